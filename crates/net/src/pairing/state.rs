//! `ferry serve`'s state directory (`--state-dir`): its own CA and server certificate,
//! made on the first run and reused after, and the log of enrolled peers.
//!
//! ```text
//! STATE/                 mode 0700
//!   ca.key               the CA's key (0600): signs the server's and joiners' certificates
//!   ca.crt               the CA certificate (its SHA-256 is what join codes pin)
//!   server/tls.crt       the server certificate, then the CA certificate (a chain)
//!   server/tls.key       its key (0600)
//!   server/ca.crt        the CA again: clients must chain to it (a TLS directory)
//!   server/names         the names the server certificate was issued for, one per line
//!   enrolled             one line per enrollment: UNIX_SECONDS sha256:FINGERPRINT NAME
//!   revoked              (optional, yours) fingerprints refused at the handshake
//! ```
//!
//! The server certificate is issued again (by the same CA, so paired peers keep working)
//! when other names are asked for, or when it has less than 30 days left.
//!
//! Must not import sockets or the engine.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::authority::{default_server_names, Authority, LEAF_LIFETIME};
use crate::certs::write_file;
use crate::error::NetError;
use crate::tls::TlsDir;

const CA_KEY: &str = "ca.key";
const CA_CERT: &str = "ca.crt";
const SERVER: &str = "server";
const NAMES: &str = "names";
const ENROLLED: &str = "enrolled";
/// The revoked-fingerprints file read by default when serving from a state directory.
pub const REVOKED: &str = "revoked";
/// A server certificate with less than this left is issued again at start.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A state directory, prepared.
#[derive(Debug)]
pub struct StateDir {
    pub path: PathBuf,
    pub authority: Authority,
    /// The names the server certificate is valid for.
    pub names: Vec<String>,
}

/// Refuses a state directory that another user owns or can write, or a symlink (as ssh's
/// StrictModes does): its CA key decides who may connect, so a directory planted by
/// another local user would let that user mint client certificates.
fn check_owned(path: &Path) -> Result<(), NetError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::symlink_metadata(path).map_err(|source| NetError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let euid = rustix::process::geteuid().as_raw();
    let problem = if !meta.is_dir() {
        Some("is not a directory (a symlink?)".to_string())
    } else if meta.uid() != euid {
        Some(format!(
            "is owned by uid {}, not this user (uid {euid})",
            meta.uid()
        ))
    } else if meta.permissions().mode() & 0o022 != 0 {
        Some(format!(
            "can be written by others (mode {:o})",
            meta.permissions().mode() & 0o7777
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(NetError::StateUnsafe {
            path: path.to_path_buf(),
            problem,
        }),
        None => Ok(()),
    }
}

impl StateDir {
    /// Opens `path`, creating the directory, the CA and the server certificate as needed.
    /// `names` (from `--server-name`) are the server certificate's names; empty keeps the
    /// stored ones, or on the first run uses [`default_server_names`].
    pub fn prepare(path: &Path, names: &[String]) -> Result<StateDir, NetError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|source| write_error(path, source))?;
        check_owned(path)?;
        let key_path = path.join(CA_KEY);
        let cert_path = path.join(CA_CERT);
        let authority = match fs::read_to_string(&key_path) {
            Ok(pem) => {
                let cert = fs::read_to_string(&cert_path).map_err(|source| NetError::Read {
                    path: cert_path.clone(),
                    source,
                })?;
                Authority::load(&pem, &cert, &cert_path)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (authority, key_pem) = Authority::create()?;
                replace(&cert_path, authority.cert_pem(), false)?;
                write_file(&key_path, &key_pem, true)?;
                tracing::info!(state = %path.display(), "made a new CA for pairing");
                authority
            }
            Err(source) => {
                return Err(NetError::Read {
                    path: key_path,
                    source,
                })
            }
        };

        let server = path.join(SERVER);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&server)
            .map_err(|source| write_error(&server, source))?;
        let stored = fs::read_to_string(server.join(NAMES))
            .map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default();
        let wanted = match (names.is_empty(), stored.is_empty()) {
            (false, _) => names.to_vec(),
            (true, false) => stored.clone(),
            (true, true) => default_server_names(),
        };
        let dir = TlsDir::new(&server);
        let fresh = fs::metadata(&dir.cert)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|issued| SystemTime::now().duration_since(issued).ok())
            .is_some_and(|age| age + RENEW_BEFORE < LEAF_LIFETIME);
        if wanted != stored || !fresh || !dir.key.exists() {
            let (cert, key) = authority.issue_server(&wanted)?;
            replace(&dir.key, &key, true)?;
            replace(&dir.cert, &format!("{cert}{}", authority.cert_pem()), false)?;
            replace(&server.join(NAMES), &(wanted.join("\n") + "\n"), false)?;
            tracing::info!(names = ?wanted, "issued the server certificate");
        }
        replace(&dir.ca, authority.cert_pem(), false)?;
        Ok(StateDir {
            path: path.to_owned(),
            authority,
            names: wanted,
        })
    }

    /// The TLS directory the server serves with.
    pub fn server_dir(&self) -> PathBuf {
        self.path.join(SERVER)
    }

    /// Opens the enrollment log for appending (done before dropping privileges).
    pub fn open_log(&self) -> Result<fs::File, NetError> {
        let path = self.path.join(ENROLLED);
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| write_error(&path, source))
    }
}

/// One line of the enrollment log.
pub fn log_line(fingerprint: &[u8; 32], name: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!(
        "{now} sha256:{} {}\n",
        super::digest::hex(fingerprint),
        if name.is_empty() { "-" } else { name }
    )
}

/// The default state directory: `/var/lib/ferry` as root, else `$XDG_STATE_HOME/ferry`
/// or `~/.local/state/ferry`. `None` when there is no home to put it in.
pub fn default_state_dir(is_root: bool, env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if is_root {
        return Some(PathBuf::from("/var/lib/ferry"));
    }
    let nonempty = |key| env(key).filter(|v| !v.is_empty());
    match nonempty("XDG_STATE_HOME") {
        Some(state) => Some(PathBuf::from(state).join("ferry")),
        None => nonempty("HOME").map(|home| PathBuf::from(home).join(".local/state/ferry")),
    }
}

/// Writes `path` whole or not at all: a temporary file beside it, renamed over it.
pub(crate) fn replace(path: &Path, contents: &str, secret: bool) -> Result<(), NetError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 });
    options
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(contents.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|source| write_error(path, source))
}

fn write_error(path: &Path, source: std::io::Error) -> NetError {
    NetError::StateWrite {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_directory_others_can_write_or_another_user_owns_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDir::prepare(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("can be written by others (mode 777)"), "{e}");
        assert!(!dir.join(CA_KEY).exists(), "nothing was written into it");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        let e = StateDir::prepare(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("is owned by uid 65534"), "{e}");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = StateDir::prepare(&link, &[]).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
    }

    #[test]
    fn the_second_run_reuses_the_ca_and_names_and_new_names_keep_the_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let names = vec!["a.example".to_owned()];
        let first = StateDir::prepare(&dir, &names).unwrap();
        let cert = fs::read(dir.join("server/tls.crt")).unwrap();
        let again = StateDir::prepare(&dir, &[]).unwrap();
        assert_eq!(first.authority.fingerprint(), again.authority.fingerprint());
        assert_eq!(again.names, names);
        assert_eq!(fs::read(dir.join("server/tls.crt")).unwrap(), cert);
        let other = StateDir::prepare(&dir, &["b.example".to_owned()]).unwrap();
        assert_eq!(first.authority.fingerprint(), other.authority.fingerprint());
        assert_ne!(fs::read(dir.join("server/tls.crt")).unwrap(), cert);
        use std::os::unix::fs::PermissionsExt;
        for secret in ["ca.key", "server/tls.key"] {
            let mode = fs::metadata(dir.join(secret)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{secret} is {mode:o}");
        }
    }

    #[test]
    fn the_default_state_dir_follows_xdg_and_root() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            default_state_dir(true, env(&[("HOME", "/h")])),
            Some(PathBuf::from("/var/lib/ferry"))
        );
        assert_eq!(
            default_state_dir(false, env(&[("HOME", "/h"), ("XDG_STATE_HOME", "/s")])),
            Some(PathBuf::from("/s/ferry"))
        );
        assert_eq!(
            default_state_dir(false, env(&[("HOME", "/h"), ("XDG_STATE_HOME", "")])),
            Some(PathBuf::from("/h/.local/state/ferry"))
        );
        assert_eq!(default_state_dir(false, env(&[])), None);
    }
}

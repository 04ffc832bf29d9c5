//! Forgetting a peer: client certificates whose SHA-256 fingerprint is revoked are
//! refused at the handshake (alert `certificate_revoked`), before any session starts.
//!
//! The fingerprints come from `serve --revoke FP` (fixed for the run) and from a file
//! (`--revoked-file`, by default `STATE/revoked`), one per line, `#` starting a comment.
//! The file is read at start (a bad file stops the server) and read again whenever its
//! size, inode or modification time changes, so a peer is forgotten without a restart; a
//! file that has become unreadable or invalid keeps the previous list and is logged.
//!
//! Must not import the engine.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::digest::{parse_fingerprint, sha256};
use super::PairingError;
use crate::error::NetError;

/// Most bytes of a revoked-fingerprints file (about 13,000 fingerprints).
const MAX_FILE: u64 = 1024 * 1024;

/// The fingerprints refused.
#[derive(Debug, Default)]
pub struct Revocation {
    fixed: HashSet<[u8; 32]>,
    file: Option<PathBuf>,
    loaded: Mutex<Loaded>,
}

#[derive(Debug, Default)]
struct Loaded {
    /// (inode, size, mtime) of the file when read; `None` when it did not exist.
    stamp: Option<Stamp>,
    set: HashSet<[u8; 32]>,
    /// The last read failed (and was logged).
    failing: bool,
}

impl Revocation {
    /// `file` is read now: an error if it exists and is invalid, or if it is missing and
    /// `required` (named on the command line rather than the state directory's default).
    pub fn new(
        fixed: Vec<[u8; 32]>,
        file: Option<PathBuf>,
        required: bool,
    ) -> Result<Revocation, NetError> {
        let mut loaded = Loaded::default();
        if let Some(path) = &file {
            let error = |detail: String| -> NetError {
                PairingError::RevokedFile {
                    path: path.clone(),
                    detail,
                }
                .into()
            };
            match stamp(path) {
                Ok(Some(s)) => {
                    loaded.set = read(path)?;
                    loaded.stamp = Some(s);
                }
                Ok(None) if required => return Err(error("it does not exist".to_owned())),
                Ok(None) => {}
                Err(e) => return Err(error(e.to_string())),
            }
        }
        Ok(Revocation {
            fixed: fixed.into_iter().collect(),
            file,
            loaded: Mutex::new(loaded),
        })
    }

    /// Whether the certificate whose DER is `cert` is revoked.
    pub fn is_revoked(&self, cert: &[u8]) -> bool {
        let fingerprint = sha256(cert);
        if self.fixed.contains(&fingerprint) {
            return true;
        }
        let Some(path) = &self.file else {
            return false;
        };
        let mut loaded = self.loaded.lock().expect("revoked lock");
        // Removed: nothing is revoked by it any more. Unreadable (permissions after
        // dropping privileges, an I/O error) or invalid: the previous list stays, so a
        // revocation is never lost to an error.
        let reread = match stamp(path) {
            Ok(now) if now == loaded.stamp => None,
            Ok(None) => Some((None, Ok(HashSet::new()))),
            Ok(Some(now)) => Some((Some(now), read(path))),
            Err(e) => Some((
                loaded.stamp,
                Err(PairingError::RevokedFile {
                    path: path.clone(),
                    detail: e.to_string(),
                }
                .into()),
            )),
        };
        match reread {
            None => {}
            Some((now, Ok(set))) => {
                tracing::info!(file = %path.display(), revoked = set.len(), "read the revoked fingerprints");
                loaded.set = set;
                loaded.stamp = now;
                loaded.failing = false;
            }
            Some((now, Err(e))) => {
                // Logged once per change of the file, not at every handshake.
                loaded.stamp = now;
                if !loaded.failing {
                    tracing::error!("{e}; keeping the previous list");
                }
                loaded.failing = true;
            }
        }
        loaded.set.contains(&fingerprint)
    }
}

type Stamp = (u64, u64, i64, i64);

/// (inode, size, mtime) of the file; `None` when it does not exist.
fn stamp(path: &Path) -> std::io::Result<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(path) {
        Ok(meta) => Ok(Some((
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read(path: &Path) -> Result<HashSet<[u8; 32]>, NetError> {
    let error = |detail: String| -> NetError {
        PairingError::RevokedFile {
            path: path.to_owned(),
            detail,
        }
        .into()
    };
    let meta = fs::metadata(path).map_err(|e| error(e.to_string()))?;
    if meta.len() > MAX_FILE {
        return Err(error(format!(
            "it is {} bytes, over the limit of {MAX_FILE}",
            meta.len()
        )));
    }
    let text = fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let mut set = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        // The enrollment log's lines work too: take the field that is a fingerprint.
        let fingerprint = line.split_whitespace().find_map(parse_fingerprint);
        match fingerprint {
            Some(fp) => set.insert(fp),
            None => return Err(error(format!("line {} holds no fingerprint", n + 1))),
        };
    }
    Ok(set)
}

/// A client verifier that refuses revoked certificates, then asks `inner`.
#[derive(Debug)]
pub struct RevokingVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub revoked: Arc<Revocation>,
}

impl ClientCertVerifier for RevokingVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.revoked.is_revoked(end_entity) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::digest::hex;

    #[test]
    fn a_file_edited_while_serving_is_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("revoked");
        let (a, b) = (b"cert a".as_slice(), b"cert b".as_slice());
        fs::write(&path, format!("# old laptop\nsha256:{}\n", hex(&sha256(a)))).unwrap();
        let r = Revocation::new(Vec::new(), Some(path.clone()), true).unwrap();
        assert!(r.is_revoked(a));
        assert!(!r.is_revoked(b));
        // A line of the enrollment log, pasted as is.
        fs::write(
            &path,
            format!("1700000000 sha256:{} laptop\n", hex(&sha256(b))),
        )
        .unwrap();
        assert!(r.is_revoked(b));
        assert!(!r.is_revoked(a));
        // A broken edit keeps the list it had; removing the file forgets it.
        fs::write(&path, "sha256:oops\n").unwrap();
        assert!(r.is_revoked(b));
        fs::remove_file(&path).unwrap();
        assert!(!r.is_revoked(b));
    }

    #[test]
    fn a_bad_file_is_refused_at_start_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("revoked");
        fs::write(&path, "not a fingerprint\n").unwrap();
        let e = Revocation::new(Vec::new(), Some(path.clone()), true).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let missing = tmp.path().join("missing");
        assert!(Revocation::new(Vec::new(), Some(missing.clone()), true).is_err());
        let optional = Revocation::new(Vec::new(), Some(missing), false).unwrap();
        assert!(!optional.is_revoked(b"x"));
    }
}

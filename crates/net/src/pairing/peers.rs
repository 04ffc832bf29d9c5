//! The joiner's side of what pairing leaves behind: one TLS directory per server,
//! `~/.config/ferry/peers/HOST_PORT/` (under `$XDG_CONFIG_HOME` when set) holding
//! `tls.crt`, `tls.key` (0600) and `ca.crt`, which later runs to that HOST:PORT use when
//! no `--tls-dir` is given.
//!
//! Must not import sockets or the engine.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use base64::Engine;

use super::state::replace;
use super::PairingError;
use crate::error::NetError;
use crate::tls::{CA_FILE, CERT_FILE, KEY_FILE};

/// `$XDG_CONFIG_HOME/ferry/peers`, or `~/.config/ferry/peers`; `None` without a home.
pub fn peers_root(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let nonempty = |key| env(key).filter(|v| !v.is_empty());
    match nonempty("XDG_CONFIG_HOME") {
        Some(config) => Some(PathBuf::from(config).join("ferry/peers")),
        None => nonempty("HOME").map(|home| PathBuf::from(home).join(".config/ferry/peers")),
    }
}

/// The directory name of a peer: `HOST_PORT`, the host in lower case with anything but
/// letters, digits, `.` and `-` (an IPv6 address's colons) written as `_`.
pub fn peer_dir_name(host: &str, port: u16) -> String {
    let host: String = host
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            '.' => '.',
            _ => '_',
        })
        .collect();
    // Never `.` or `..`, whatever the host was.
    let host = host.trim_start_matches('.');
    format!("{host}_{port}")
}

/// Stores a pairing's result in `dir` (created, mode 0700): each file written whole and
/// renamed into place, the key first, so that a directory with a certificate always has
/// its key.
pub fn store(dir: &Path, cert_der: &[u8], key_pem: &str, ca_der: &[u8]) -> Result<(), NetError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PairingError::Store {
            path: dir.to_owned(),
            source,
        })?;
    replace(&dir.join(KEY_FILE), key_pem, true)?;
    replace(&dir.join(CERT_FILE), &pem("CERTIFICATE", cert_der), false)?;
    replace(&dir.join(CA_FILE), &pem("CERTIFICATE", ca_der), false)?;
    Ok(())
}

/// Whether `dir` holds a stored pairing.
pub fn is_paired(dir: &Path) -> bool {
    [CERT_FILE, KEY_FILE, CA_FILE]
        .iter()
        .all(|f| fs::metadata(dir.join(f)).is_ok_and(|m| m.is_file()))
}

/// PEM text of one DER object.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_directories_are_one_safe_name_per_host_and_port() {
        assert_eq!(peer_dir_name("Dvm.Example.com", 443), "dvm.example.com_443");
        assert_eq!(peer_dir_name("::1", 9000), "__1_9000");
        assert_eq!(peer_dir_name("../etc", 1), "_etc_1");
        assert_eq!(peer_dir_name("a/b", 1), "a_b_1");
    }

    #[test]
    fn the_peers_root_follows_xdg() {
        let env = |pairs: Vec<(&'static str, &'static str)>| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(a, _)| *a == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            peers_root(env(vec![("HOME", "/h"), ("XDG_CONFIG_HOME", "/c")])),
            Some(PathBuf::from("/c/ferry/peers"))
        );
        assert_eq!(
            peers_root(env(vec![("HOME", "/h")])),
            Some(PathBuf::from("/h/.config/ferry/peers"))
        );
        assert_eq!(peers_root(env(vec![])), None);
    }
}

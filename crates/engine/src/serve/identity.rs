//! Where a server's TLS comes from, prepared before privileges are dropped: a TLS
//! directory (`--tls-dir`), or its own CA in a state directory, with the revoked
//! fingerprints and, with `--pair`, a pairing window and its code.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_net::pairing::{
    state::REVOKED, JoinCode, PairingWindow, Revocation, ServerTls, StateDir,
};
use ferry_net::TlsDir;

use super::{ServeConfig, ServerIdentity};
use crate::enroll::Pairing;
use crate::error::EngineError;

type Prepared = (
    ServerTls,
    Option<Arc<Pairing>>,
    Option<(JoinCode, Vec<String>)>,
);

pub fn prepare(config: &ServeConfig) -> Result<Prepared, EngineError> {
    let (dir, state) = match &config.identity {
        ServerIdentity::Dir(dir) => (dir.clone(), None),
        ServerIdentity::State { dir, names } => {
            let state = StateDir::prepare(dir, names)?;
            (state.server_dir(), Some(state))
        }
    };
    let dir = TlsDir::new(&dir);
    // An explicit file must exist; the state directory's default may not.
    let revoked_file = match (&config.revoked_file, &state) {
        (Some(file), _) => Some((file.clone(), true)),
        (None, Some(state)) => Some((state.path.join(REVOKED), false)),
        (None, None) => None,
    };
    let (file, required) = match revoked_file {
        Some((file, required)) => (Some(file), required),
        None => (None, false),
    };
    let revocation = Arc::new(Revocation::new(config.revoke.clone(), file, required)?);
    let session = ferry_net::server_config_revoking(&dir, revocation)?;
    let Some(ttl) = config.pair_ttl else {
        return Ok((ServerTls::new(session, None), None, None));
    };
    let Some(state) = state else {
        return Err(EngineError::usage(
            "--pair needs the server's own CA, kept in --state-dir: leave out --tls-dir (certificates from `ferry certs` carry no CA key to issue with)".to_owned(),
        ));
    };
    let code = JoinCode::generate(state.authority.fingerprint())?;
    let window = Arc::new(PairingWindow::open(code.clone(), Instant::now() + ttl));
    let log = match state.open_log() {
        Ok(file) => Some(Mutex::new(file)),
        Err(e) => {
            tracing::warn!("{e}; enrollments are logged here only");
            None
        }
    };
    let enroll = ferry_net::enroll_server_config(&dir)?;
    let names = state.names.clone();
    let pairing = Arc::new(Pairing {
        window: window.clone(),
        authority: state.authority,
        log,
    });
    tracing::info!(
        ca = %format!("sha256:{}", ferry_net::pairing::digest::hex(&pairing.authority.fingerprint())),
        ttl = ?ttl,
        "pairing window open: the join code works once"
    );
    Ok((
        ServerTls::new(session, Some((enroll, window))),
        Some(pairing),
        Some((code, names)),
    ))
}

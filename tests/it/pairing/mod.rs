//! Pairing two hosts by hand (issue #19): `ferry serve --pair` prints a command with a
//! one-time join code; `--join CODE` on the other host pairs, stores its certificates
//! per peer, and later runs need no certificate files. Refusals: a used or expired
//! code, a server with another CA (before the proof is sent), a proof replayed on
//! another connection, a revoked client. Through the proxy and router: `route::pairing`.

mod exchange;
mod flow;
mod refusals;

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::files::write;
use crate::util::{push_paired, Push, Server};

/// A source tree, a volume, a state directory, and a client's config home.
pub struct Hosts {
    pub tmp: TempDir,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub state: PathBuf,
    /// The joiner's `XDG_CONFIG_HOME`.
    pub client: PathBuf,
}

impl Hosts {
    pub fn new() -> Hosts {
        let tmp = TempDir::new().expect("tempdir");
        let [src, dst, state, client] =
            ["src", "dst", "state", "client"].map(|name| tmp.path().join(name));
        for dir in [&src, &dst, &client] {
            std::fs::create_dir(dir).expect("mkdir");
        }
        write(&src.join("a.txt"), b"paired\n", 0o644);
        write(&src.join("dir/b.txt"), b"bee\n", 0o600);
        Hosts {
            tmp,
            src,
            dst,
            state,
            client,
        }
    }

    /// `ferry serve --pair` on `vol`, with its own CA in `state`, named 127.0.0.1, plus `args`.
    pub fn serve_pairing(&self, args: &[&str]) -> Server {
        let mut builder = Server::builder_with_state(&self.state)
            .volume("vol", &self.dst)
            .arg("--pair")
            .arg("--server-name")
            .arg("127.0.0.1");
        for arg in args {
            builder = builder.arg(arg);
        }
        builder.start()
    }

    /// A push to `server`'s `vol` with the certificates paired into `config_home`.
    pub fn push(&self, server: &Server, config_home: &Path) -> Push {
        push_paired(&self.src, &server.url("vol"), config_home)
    }
}

/// The join code from the command `serve --pair` printed.
pub fn join_code(server: &Server) -> String {
    let line = server.wait_for_stdout("ferry push SRC ");
    let code = line
        .split("--join ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no code after --join in {line:?}"));
    code.to_owned()
}

/// The fingerprint (`sha256:HEX`) a joiner printed for its new certificate.
pub fn printed_fingerprint(stderr: &str) -> String {
    let at = stderr
        .find("(sha256:")
        .unwrap_or_else(|| panic!("the joiner printed no fingerprint:\n{stderr}"));
    stderr[at + 1..at + 1 + 7 + 64].to_owned()
}

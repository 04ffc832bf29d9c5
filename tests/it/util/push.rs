//! `ferry push` and `ferry pull` runs, and what they printed (`--json` events parsed).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ferry, run_guarded, Certs, Output};

/// `ferry push SRC URL --tls-dir CLIENT [flags]` (or `ferry pull URL DEST ...`), built
/// up and then run.
pub struct Push {
    command: &'static str,
    /// The two operands in command-line order.
    operands: [OsString; 2],
    /// `None`: no --tls-dir, so the certificates from pairing (see [`push_paired`]).
    tls_dir: Option<PathBuf>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    json: bool,
}

pub fn push(certs: &Certs, src: &Path, url: &str) -> Push {
    Push {
        command: "push",
        operands: [src.as_os_str().to_os_string(), url.into()],
        tls_dir: Some(certs.client_dir()),
        args: Vec::new(),
        envs: Vec::new(),
        json: false,
    }
}

/// `ferry push SRC URL [flags]` with no --tls-dir: the certificates are the ones pairing
/// stored under `config_home` (its `XDG_CONFIG_HOME`); add `--join CODE` to pair first.
pub fn push_paired(src: &Path, url: &str, config_home: &Path) -> Push {
    Push {
        command: "push",
        operands: [src.as_os_str().to_os_string(), url.into()],
        tls_dir: None,
        args: Vec::new(),
        envs: vec![(
            "XDG_CONFIG_HOME".into(),
            config_home.as_os_str().to_os_string(),
        )],
        json: false,
    }
}

/// `ferry pull URL DEST --tls-dir CLIENT [flags]`.
pub fn pull(certs: &Certs, url: &str, dest: &Path) -> Push {
    Push {
        command: "pull",
        operands: [url.into(), dest.as_os_str().to_os_string()],
        tls_dir: Some(certs.client_dir()),
        args: Vec::new(),
        envs: Vec::new(),
        json: false,
    }
}

impl Push {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Sets an environment variable for the push (proxy variables are otherwise cleared).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn json(mut self) -> Self {
        self.json = true;
        self.arg("--json")
    }

    pub fn delete(self) -> Self {
        self.arg("--delete")
    }

    pub fn dry_run(self) -> Self {
        self.arg("--dry-run")
    }

    pub fn checksum(self) -> Self {
        self.arg("--checksum")
    }

    pub fn server_name(self, name: &str) -> Self {
        self.arg("--server-name").arg(name)
    }

    pub fn tls_dir(mut self, dir: &Path) -> Self {
        self.tls_dir = Some(dir.to_path_buf());
        self
    }

    pub fn run(self) -> PushOutcome {
        let mut cmd = ferry();
        cmd.arg(self.command).args(&self.operands);
        if let Some(dir) = &self.tls_dir {
            cmd.arg("--tls-dir").arg(dir);
        }
        cmd.args(&self.args);
        clear_proxy_env(&mut cmd);
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        let output = run_guarded(&mut cmd, &format!("ferry {}", self.command));
        let events = if self.json {
            Some(parse_events(&output))
        } else {
            None
        };
        PushOutcome { output, events }
    }
}

/// A finished push: exit code, output, and with `--json` its events.
#[derive(Debug)]
pub struct PushOutcome {
    pub output: Output,
    events: Option<Vec<Value>>,
}

impl PushOutcome {
    pub fn stderr(&self) -> &str {
        &self.output.stderr
    }

    pub fn stdout(&self) -> &str {
        &self.output.stdout
    }

    /// Panics with everything the push printed unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.output.code,
            Some(code),
            "ferry push/pull: unexpected exit code\n{}",
            self.output.dump()
        );
        self
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        self.assert_code(0)
    }

    pub fn events(&self) -> &[Value] {
        self.events
            .as_deref()
            .expect("push was not run with --json")
    }

    /// The last `--json` line, which must be the summary.
    #[track_caller]
    pub fn summary(&self) -> &Value {
        let last = self
            .events()
            .last()
            .unwrap_or_else(|| panic!("--json printed nothing\n{}", self.output.dump()));
        assert_eq!(
            last["event"],
            "summary",
            "the last --json line is not the summary\n{}",
            self.output.dump()
        );
        last
    }

    /// A non-negative integer field of the summary.
    #[track_caller]
    pub fn stat(&self, field: &str) -> u64 {
        let v = &self.summary()[field];
        v.as_u64().unwrap_or_else(|| {
            panic!(
                "summary field {field:?} is {v}, expected a non-negative integer\n{}",
                self.output.dump()
            )
        })
    }

    /// The `change` events as (path, change, kind).
    pub fn changes(&self) -> Vec<(String, String, String)> {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        self.events()
            .iter()
            .filter(|e| e["event"] == "change")
            .map(|e| (s(&e["path"]), s(&e["change"]), s(&e["kind"])))
            .collect()
    }
}

/// The variables that choose a proxy, which the test runner's own environment must not leak
/// into a push.
pub const PROXY_ENV: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

pub fn clear_proxy_env(cmd: &mut std::process::Command) {
    for key in PROXY_ENV {
        cmd.env_remove(key);
    }
}

fn parse_events(output: &Output) -> Vec<Value> {
    output
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("--json line {line:?} is not JSON ({e})\n{}", output.dump())
            });
            assert!(
                v["event"].is_string(),
                "--json line {line:?} has no \"event\" field\n{}",
                output.dump()
            );
            v
        })
        .collect()
}

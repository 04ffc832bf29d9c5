//! `ferry probe` runs and their hop lines: `{ok|FAIL|skip} {hop} {text}`, one per hop, in
//! the order `dns tcp connect tls client-cert volume`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::util::{clear_proxy_env, ferry, run_guarded, Output};

pub const HOPS: [&str; 6] = ["dns", "tcp", "connect", "tls", "client-cert", "volume"];

pub struct Probe {
    url: String,
    tls_dir: PathBuf,
    args: Vec<OsString>,
}

pub fn probe(tls_dir: &Path, url: &str) -> Probe {
    Probe {
        url: url.to_string(),
        tls_dir: tls_dir.to_path_buf(),
        args: Vec::new(),
    }
}

impl Probe {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn server_name(self, name: &str) -> Self {
        self.arg("--server-name").arg(name)
    }

    pub fn proxy(self, url: &str) -> Self {
        self.arg("--proxy").arg(url)
    }

    pub fn run(self) -> ProbeOutcome {
        let mut cmd = ferry();
        cmd.arg("probe")
            .arg(&self.url)
            .arg("--tls-dir")
            .arg(&self.tls_dir)
            .args(&self.args);
        clear_proxy_env(&mut cmd);
        ProbeOutcome {
            output: run_guarded(&mut cmd, "ferry probe"),
        }
    }
}

#[derive(Debug)]
pub struct ProbeOutcome {
    pub output: Output,
}

/// One hop line.
#[derive(Debug)]
pub struct HopLine {
    pub verdict: String,
    pub hop: String,
    pub text: String,
}

impl ProbeOutcome {
    /// The hop lines of stdout (lines starting with `ok`, `FAIL` or `skip`).
    pub fn hops(&self) -> Vec<HopLine> {
        self.output
            .stdout
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let verdict = words.next()?;
                if !matches!(verdict, "ok" | "FAIL" | "skip") {
                    return None;
                }
                let hop = words.next().unwrap_or_default().to_string();
                let text = words.collect::<Vec<_>>().join(" ");
                Some(HopLine {
                    verdict: verdict.to_string(),
                    hop,
                    text,
                })
            })
            .collect()
    }

    /// Asserts the exit code and, hop by hop in order, the verdicts (`ok`, `FAIL`, `skip`).
    #[track_caller]
    pub fn assert(&self, code: i32, verdicts: [&str; 6]) -> &Self {
        let got: Vec<(String, String)> = self
            .hops()
            .into_iter()
            .map(|h| (h.hop, h.verdict))
            .collect();
        let want: Vec<(String, String)> = HOPS
            .iter()
            .zip(verdicts)
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want, "ferry probe: hops\n{}", self.output.dump());
        assert_eq!(
            self.output.code,
            Some(code),
            "ferry probe: exit code\n{}",
            self.output.dump()
        );
        self
    }

    /// The text of hop `name`.
    #[track_caller]
    pub fn text(&self, name: &str) -> String {
        self.hops()
            .into_iter()
            .find(|h| h.hop == name)
            .unwrap_or_else(|| panic!("no {name} line\n{}", self.output.dump()))
            .text
    }

    /// Everything the probe printed.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.output.stdout, self.output.stderr)
    }
}

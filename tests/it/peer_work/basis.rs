//! A basis truncated by another process while a delta is applied against it costs that
//! file a re-send, never the process (push to serve, and pull).

use super::*;

/// The basis of the delta tests: `SIZE` random bytes; the new version changes every
/// other MiB, so half of it travels as literals (slowed by `--bwlimit`) between copies.
const SIZE: usize = 24 << 20;
const BWLIMIT: &str = "4M";
/// Hang guard of a whole delta test: about 3 s of literals, then 6 s of the resend.
const TRANSFER_GUARD: Duration = Duration::from_secs(120);

fn basis_and_new() -> (Vec<u8>, Vec<u8>) {
    let old = random_bytes("truncated basis: old", SIZE);
    let mut new = old.clone();
    for (i, chunk) in new
        .chunks_mut(1 << 20)
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
    {
        chunk.copy_from_slice(&random_bytes(&format!("truncated basis: {i}"), chunk.len()));
    }
    (old, new)
}

/// Waits until process `pid` holds a file open in `dir` other than `basis` (and other
/// than `dir` itself): the temp file the delta is written to, whatever its name.
fn await_temp_file(pid: u32, dir: &Path, basis: &Path) {
    let dir = dir.canonicalize().unwrap();
    let basis = dir.join(basis.file_name().unwrap());
    await_condition("the target writing the delta", EXIT_GUARD, || {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|p| p.starts_with(&dir) && p != dir && p != basis)
        })
    });
}

/// Summary field `field` of a `--summary-file`.
fn summary_stat(path: &Path, field: &str) -> u64 {
    let text = std::fs::read_to_string(path).expect("summary file");
    let json: serde_json::Value = serde_json::from_str(&text).expect("summary JSON");
    json[field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary field {field} in {text}"))
}

#[test]
fn a_basis_truncated_during_a_pushed_delta_costs_a_resend_not_the_server() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let (old, new) = basis_and_new();
    write(&dst.join("big.img"), &old, 0o644);
    set_mtime(&dst.join("big.img"), 1_700_000_000, 0);
    write(&src.join("big.img"), &new, 0o644);
    set_mtime(&src.join("big.img"), 1_700_000_100, 0);
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &dst).once().start();
    let summary = tmp.path().join("summary.json");
    let mut cmd = ferry();
    cmd.arg("push")
        .arg(&src)
        .arg(server.url("vol"))
        .arg("--tls-dir")
        .arg(certs.client_dir())
        .args(["--bwlimit", BWLIMIT, "--summary-file"])
        .arg(&summary);
    let pusher = Spawned::start(&mut cmd);
    await_temp_file(server.pid(), &dst, &dst.join("big.img"));
    std::fs::File::options()
        .write(true)
        .open(dst.join("big.img"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let (code, out) = pusher.finish("ferry push", TRANSFER_GUARD);
    let served = server.finish();
    assert_eq!(
        served.code,
        Some(0),
        "serve survives and succeeds\n{}",
        served.dump()
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(summary_stat(&summary, "files_resent"), 1, "{out}");
    assert!(
        read(&dst.join("big.img")) == new,
        "the file ends as the source's"
    );
}

#[test]
fn a_basis_truncated_during_a_pulled_delta_costs_a_resend_not_the_puller() {
    let tmp = TempDir::new().unwrap();
    let (src, dest) = (tmp.path().join("src"), tmp.path().join("dest"));
    let (old, new) = basis_and_new();
    write(&dest.join("big.img"), &old, 0o644);
    set_mtime(&dest.join("big.img"), 1_700_000_000, 0);
    write(&src.join("big.img"), &new, 0o644);
    set_mtime(&src.join("big.img"), 1_700_000_100, 0);
    let certs = Certs::new();
    let server = Server::builder(&certs)
        .read_only_volume("vol", &src)
        .once()
        .start();
    let summary = tmp.path().join("summary.json");
    let mut cmd = pull_command(&certs, &server.url("vol"), &dest);
    cmd.args(["--bwlimit", BWLIMIT, "--summary-file"])
        .arg(&summary);
    let puller = Spawned::start(&mut cmd);
    await_temp_file(puller.pid(), &dest, &dest.join("big.img"));
    std::fs::File::options()
        .write(true)
        .open(dest.join("big.img"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let (code, out) = puller.finish("ferry pull", TRANSFER_GUARD);
    assert_eq!(code, Some(0), "the puller survives and succeeds\n{out}");
    assert_eq!(summary_stat(&summary, "files_resent"), 1, "{out}");
    assert!(
        read(&dest.join("big.img")) == new,
        "the file ends as the source's"
    );
    let served = server.finish();
    assert_eq!(served.code, Some(0), "{}", served.dump());
}

//! `--compress`: compressible data crosses in fewer bytes and arrives exact; random data
//! arrives exact too (the entropy probe sends it as it is).

use crate::files::{random_bytes, write};
use crate::snapshot::{diff, Snapshot};
use crate::util::Fixture;

#[test]
fn compressible_data_crosses_in_fewer_bytes_and_arrives_exact() {
    let fx = Fixture::new();
    let text =
        "2026-11-26T22:11:21Z INFO request served in 3 ms path=/api/v1/items\n".repeat(60_000);
    write(&fx.src.join("app.log"), text.as_bytes(), 0o644);
    write(
        &fx.src.join("noise.bin"),
        &random_bytes("noise", 2 << 20),
        0o644,
    );
    let out = fx.push().arg("--compress").json().run();
    out.assert_ok();
    let total = out.stat("bytes_total");
    let wire = out.stat("bytes_on_wire");
    assert!(
        wire < total * 2 / 3,
        "{wire} bytes on the wire for {total} bytes of files"
    );
    let (before, after) = (
        out.stat("bytes_before_compression"),
        out.stat("bytes_after_compression"),
    );
    assert!(
        after * 10 < before,
        "compression reported {before} -> {after}"
    );
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn without_the_flag_nothing_is_compressed() {
    let fx = Fixture::new();
    write(
        &fx.src.join("app.log"),
        "same line\n".repeat(100_000).as_bytes(),
        0o644,
    );
    let out = fx.push().json().run();
    out.assert_ok();
    assert_eq!(out.stat("bytes_before_compression"), 0);
    assert!(out.stat("bytes_on_wire") > out.stat("bytes_total"));
}

/// A pull compresses at the server (the source) and counts what arrived compressed.
#[test]
fn a_pull_with_compress_crosses_in_fewer_bytes_and_arrives_exact() {
    let fx = Fixture::new();
    let text =
        "2026-11-26T22:11:21Z INFO request served in 3 ms path=/api/v1/items\n".repeat(60_000);
    // The fixture's served volume is the pull's source.
    write(&fx.dst.join("app.log"), text.as_bytes(), 0o644);
    let dest = fx.tmp.path().join("pulled");
    let pull = |compress: bool| {
        let mut pull = crate::util::pull(&fx.certs, &fx.server.url("vol"), &dest).json();
        if compress {
            pull = pull.arg("--compress");
        }
        let out = pull.run();
        out.assert_ok();
        assert_eq!(
            std::fs::read(dest.join("app.log")).unwrap(),
            text.as_bytes()
        );
        std::fs::remove_dir_all(&dest).unwrap();
        out
    };
    let plain = pull(false);
    assert_eq!(plain.stat("bytes_before_compression"), 0);
    let out = pull(true);
    let (before, after) = (
        out.stat("bytes_before_compression"),
        out.stat("bytes_after_compression"),
    );
    assert!(
        before >= text.len() as u64 && after * 10 < before,
        "compression reported {before} -> {after}"
    );
    assert!(
        out.stat("bytes_on_wire") * 5 < plain.stat("bytes_on_wire"),
        "{} bytes on the wire compressed, {} without",
        out.stat("bytes_on_wire"),
        plain.stat("bytes_on_wire")
    );
}

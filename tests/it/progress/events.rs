//! `--json`: every line against the documented schema (docs/events.md), through a run
//! that is cut by the network and retried.

use serde_json::Value;

use crate::files::{random_bytes, write};
use crate::relay::Relay;
use crate::snapshot::{diff, Snapshot};
use crate::util::Fixture;

#[derive(Clone, Copy)]
enum Type {
    Int,
    Number,
    Str,
    Bool,
    /// An integer or null.
    OptInt,
    List,
}

fn has(v: &Value, t: Type) -> bool {
    match t {
        Type::Int => v.is_u64(),
        Type::Number => v.is_number(),
        Type::Str => v.is_string(),
        Type::Bool => v.is_boolean(),
        Type::OptInt => v.is_u64() || v.is_null(),
        Type::List => v.is_array(),
    }
}

/// The required fields of each event, as docs/events.md lists them.
fn schema(event: &str) -> Option<Vec<(&'static str, Type)>> {
    use Type::*;
    let fields = match event {
        "start" => vec![
            ("source", Str),
            ("target", Str),
            ("volume", Str),
            ("dry_run", Bool),
            ("ferry_version", Str),
        ],
        "progress" => vec![
            ("phase", Str),
            ("files_done", Int),
            ("files_total", Int),
            ("bytes_done", Int),
            ("bytes_total", Int),
            ("totals_final", Bool),
            ("bytes_on_wire", Int),
            ("rate_bps", Int),
            ("eta_s", OptInt),
            ("retries", Int),
            ("attempt", Int),
            ("elapsed_s", Number),
        ],
        "privileges" => vec![
            ("side", Str),
            ("uid", Int),
            ("held", List),
            ("missing", List),
        ],
        "target_space" => vec![
            ("free_bytes", Int),
            ("reserved_bytes", Int),
            ("free_inodes", Int),
            ("block_size", Int),
        ],
        "change" => vec![("path", Str), ("change", Str), ("kind", Str)],
        "file_error" => vec![("side", Str), ("path", Str), ("message", Str)],
        "warning" => vec![("path", Str), ("message", Str)],
        "stream" => vec![("stream", Int), ("state", Str), ("reason", Str)],
        "summary" => vec![
            ("files_total", Int),
            ("files_transferred", Int),
            ("files_unchanged", Int),
            ("files_deleted", Int),
            ("bytes_total", Int),
            ("bytes_transferred", Int),
            ("bytes_literal", Int),
            ("bytes_matched", Int),
            ("bytes_on_wire", Int),
            ("speedup", Number),
            ("entries_total", Int),
            ("entries_created", Int),
            ("meta_updated", Int),
            ("files_delta", Int),
            ("files_resent", Int),
            ("files_inplace", Int),
            ("file_errors", Int),
            ("source_read_errors", Int),
            ("source_vanished", Int),
            ("delete_skipped", Bool),
            ("retries", Int),
            ("streams", Int),
            ("bytes_resumed", Int),
            ("not_applied_owner", Int),
            ("not_applied_xattrs", Int),
            ("not_applied_special", Int),
            ("duration_s", Number),
            ("exit_code", Int),
        ],
        _ => return None,
    };
    Some(fields)
}

/// Panics unless `line` is a known event with every required field of the right type.
fn check(line: &Value) {
    assert_eq!(line["schema"], 1, "no \"schema\": 1 in {line}");
    let event = line["event"].as_str().expect("event");
    let fields = schema(event).unwrap_or_else(|| panic!("unknown event {event:?}: {line}"));
    for (field, t) in fields {
        assert!(
            has(&line[field], t),
            "{event}.{field} missing or mistyped in {line}"
        );
    }
    if event == "progress" {
        let phases = [
            "connecting",
            "scanning",
            "transferring",
            "deleting",
            "finishing",
            "done",
        ];
        assert!(phases.contains(&line["phase"].as_str().unwrap()), "{line}");
        let n = |f: &str| line[f].as_u64().unwrap();
        assert!(n("files_done") <= n("files_total"), "{line}");
        assert!(n("bytes_done") <= n("bytes_total"), "{line}");
    }
}

#[test]
fn every_json_line_follows_the_schema_through_a_retry() {
    let fx = Fixture::new();
    // Names sort before big.bin: the small files are resolved, and acknowledged with the
    // target's running count, long before the relay cuts the big one.
    for name in ["a1", "a2", "a3", "a4"] {
        write(&fx.src.join(name), name.as_bytes(), 0o644);
    }
    write(
        &fx.src.join("big.bin"),
        &random_bytes("events", 24 << 20),
        0o644,
    );
    for dir in ["z1", "z2", "z3", "z4"] {
        std::fs::create_dir(fx.src.join(dir)).unwrap();
    }
    let server_addr = fx.server.addr.parse().unwrap();
    let relay = Relay::start(server_addr, 12 << 20);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    // Each attempt lists 5 directories, 300 ms apart: longer than a second, so at least
    // one `progress` event is due whatever the machine's speed.
    let out = crate::util::push(&fx.certs, &fx.src, &url)
        .arg("--retries")
        .arg("3")
        .env("FERRY_TEST_SCAN_PAUSE_MS", "300")
        .json()
        .run();
    out.assert_ok();
    assert!(relay.connections() >= 2, "the relay never cut a connection");

    let events = out.events();
    for line in events {
        check(line);
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"start"), "{kinds:?}");
    // Then, once, what this side holds and cannot do (here root: all of it).
    assert_eq!(kinds.get(1), Some(&"privileges"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "privileges").count(), 1);
    assert_eq!(kinds.last(), Some(&"summary"), "{kinds:?}");
    assert!(
        kinds.contains(&"warning"),
        "the retry was not announced: {kinds:?}"
    );
    let progress: Vec<&Value> = events.iter().filter(|e| e["event"] == "progress").collect();
    assert!(progress.len() >= 2, "{kinds:?}");
    let last = progress.last().unwrap();
    assert_eq!(last["phase"], "done", "{last}");
    assert_eq!(last["files_done"], 5, "{last}");
    assert_eq!(last["bytes_done"], last["bytes_total"], "{last}");
    assert!(last["retries"].as_u64().unwrap() >= 1, "{last}");
    // Cumulative numbers never go down.
    for pair in progress.windows(2) {
        for field in ["retries", "bytes_on_wire", "attempt"] {
            assert!(
                pair[0][field].as_u64() <= pair[1][field].as_u64(),
                "{field}: {pair:?}"
            );
        }
    }

    assert_eq!(out.stat("files_total"), 5);
    assert_eq!(out.stat("files_transferred"), 5, "{}", out.stdout());
    assert_eq!(out.stat("files_unchanged"), 0, "{}", out.stdout());
    assert!(out.stat("retries") >= 1);
    assert_eq!(out.stat("bytes_total"), (24 << 20) + 8);
    assert_eq!(out.stat("entries_total"), 9);
    assert_eq!(out.stat("bytes_transferred"), out.stat("bytes_total"));
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(problems.is_empty(), "{problems:#?}");

    // The summary file holds the same summary, schema included.
    let again = fx
        .push()
        .json()
        .arg("--summary-file")
        .arg(fx.tmp.path().join("s.json"))
        .run();
    again.assert_ok();
    let file = std::fs::read_to_string(fx.tmp.path().join("s.json")).unwrap();
    let summary: Value = serde_json::from_str(file.trim()).unwrap();
    check(&summary);
    assert_eq!(summary["files_unchanged"], 5, "{summary}");
    assert_eq!(summary["files_transferred"], 0, "{summary}");
}

#[test]
fn every_json_line_of_a_pull_follows_the_schema_through_a_retry() {
    let fx = Fixture::new();
    // The fixture's served volume is the pull's source.
    for name in ["a1", "a2", "a3", "a4"] {
        write(&fx.dst.join(name), name.as_bytes(), 0o644);
    }
    write(
        &fx.dst.join("big.bin"),
        &random_bytes("pull events", 24 << 20),
        0o644,
    );
    let server_addr = fx.server.addr.parse().unwrap();
    let relay = Relay::cutting_replies(server_addr, 12 << 20);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let dest = fx.tmp.path().join("pulled");
    let out = crate::util::pull(&fx.certs, &url, &dest)
        .arg("--retries")
        .arg("3")
        .json()
        .run();
    out.assert_ok();
    assert!(relay.connections() >= 2, "the relay never cut a connection");
    let events = out.events();
    for line in events {
        check(line);
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"start"), "{kinds:?}");
    // Then, once, what this side holds and cannot do (here root: all of it).
    assert_eq!(kinds.get(1), Some(&"privileges"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "privileges").count(), 1);
    assert_eq!(kinds.last(), Some(&"summary"), "{kinds:?}");
    assert!(
        kinds.contains(&"warning"),
        "the retry was not announced: {kinds:?}"
    );
    let start = &events[0];
    assert_eq!(start["source"], url.as_str(), "{start}");
    assert_eq!(start["target"], dest.to_str().unwrap(), "{start}");
    let last = events.iter().rfind(|e| e["event"] == "progress").unwrap();
    assert_eq!(last["phase"], "done", "{last}");
    assert_eq!(last["files_done"], 5, "{last}");
    assert_eq!(last["bytes_done"], last["bytes_total"], "{last}");
    assert_eq!(out.stat("files_total"), 5);
    assert_eq!(out.stat("bytes_total"), (24 << 20) + 8);
    assert!(out.stat("retries") >= 1);
    // Files the cut attempt committed count as transferred, not as found unchanged.
    assert_eq!(out.stat("files_transferred"), 5, "{}", out.summary());
    assert_eq!(out.stat("files_unchanged"), 0, "{}", out.summary());
    assert_eq!(out.stat("bytes_transferred"), out.stat("bytes_total"));
    // The cut file resumed from its partial rather than starting over.
    assert!(out.stat("bytes_resumed") > 0, "{}", out.summary());
    let problems = diff(&Snapshot::take(&fx.dst), &Snapshot::take(&dest));
    assert!(problems.is_empty(), "{problems:#?}");
}

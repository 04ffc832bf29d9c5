//! Corpus replay for `cargo test`: runs one fuzz target's check over every file of
//! `fuzz/corpus/<target>/` and `fuzz/crashes/<target>/`, without libFuzzer. Included with
//! `#[path]` by each crate's `tests/fuzz_corpus.rs`; std only.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// `fuzz/` from a crate under `crates/`.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Runs `check` on every input of `target`. The corpus must exist and hold inputs: a
/// lost corpus fails the test rather than passing silently.
pub fn replay(target: &str, check: fn(&[u8])) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "no corpus for {target} in {}: restore it, or regenerate the seeds (fuzz/README.md)",
        fuzz_dir().join("corpus").join(target).display()
    );
    let crashes = files(&fuzz_dir().join("crashes").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&crashes) {
        let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs fail (panic messages above):\n  {}",
        failed.len(),
        corpus.len() + crashes.len(),
        failed.join("\n  ")
    );
}

/// The regular files in `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read the corpus directory").path())
        .filter(|p| p.is_file() && !is_hidden(p))
        .collect();
    files.sort();
    files
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

//! Routing and the byte budget of the pool, with real workers on a temp directory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::{Message, RelPath};
use ferry_tree::{Privileges, Volume};
use tokio::sync::mpsc;

use super::*;
use crate::target::apply::tests::pending;

struct Setup {
    pool: ApplyPool,
    dir: Arc<ferry_tree::Dir>,
    _base: tempfile::TempDir,
    _completions: mpsc::UnboundedReceiver<Vec<Completion>>,
}

fn setup(workers: usize, budget: usize) -> Setup {
    let base = tempfile::tempdir().unwrap();
    let volume = Volume::open(base.path(), Privileges::current()).unwrap();
    let dir = Arc::new(volume.open_dir(&RelPath::root()).unwrap());
    let (completions, heard) = mpsc::unbounded_channel();
    let (pool, _threads) = ApplyPool::with_workers(
        workers,
        budget,
        Privileges::current(),
        false,
        completions,
        Cancel::new(),
    );
    Setup {
        pool,
        dir,
        _base: base,
        _completions: heard,
    }
}

fn start(dir: &Arc<ferry_tree::Dir>, index: u64, size: u64) -> Job {
    Job::Start {
        index,
        pending: pending(dir.clone(), format!("f{index}").as_bytes(), size),
        basis: None,
        resumed: None,
    }
}

/// A large file pins one worker; the small files started while it is unfinished go to
/// the other workers, spread over them in turn.
#[tokio::test]
async fn a_large_file_pins_one_worker_and_small_files_go_to_the_others() {
    let mut s = setup(3, 1 << 20);
    s.pool.queue(0, start(&s.dir, 0, 1 << 30)).await.unwrap();
    for index in 1..=6 {
        s.pool
            .queue(index, start(&s.dir, index, 1000))
            .await
            .unwrap();
    }
    let big = s.pool.routes[&0].0;
    let small: Vec<usize> = (1..=6).map(|i| s.pool.routes[&i].0).collect();
    assert!(
        !small.contains(&big),
        "small files {small:?} joined the large one on {big}"
    );
    for w in (0..3).filter(|&w| w != big) {
        let n = small.iter().filter(|&&k| k == w).count();
        assert_eq!(n, 3, "worker {w} got {n} of 6 small files: {small:?}");
    }
}

/// Data frames hold their bytes of the budget while queued, and give them back once
/// their worker has written them; a frame over what is left waits for that.
#[tokio::test]
async fn queued_data_holds_the_budget_until_written() {
    let budget = 1 << 20;
    let mut s = setup(1, budget);
    let size = 768 << 10;
    for index in 0..2 {
        s.pool
            .queue(index, start(&s.dir, index, size))
            .await
            .unwrap();
    }
    let data = |index| {
        Job::Frame(Message::Data {
            index,
            offset: 0,
            bytes: vec![7u8; size as usize].into(),
        })
    };
    s.pool.queue(0, data(0)).await.unwrap();
    assert_eq!(s.pool.budget.available_permits(), budget - size as usize);
    // Not queued yet (not flushed): file 1's data must wait for file 0's to be written,
    // which needs the queued batch handed over first.
    tokio::time::timeout(Duration::from_secs(10), s.pool.queue(1, data(1)))
        .await
        .expect("the budget came back after the write")
        .unwrap();
    s.pool.flush().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.pool.budget.available_permits() != budget {
        assert!(Instant::now() < deadline, "the budget never came back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

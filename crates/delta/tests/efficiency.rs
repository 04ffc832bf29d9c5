//! Scattered small edits cost few literal bytes when the engine uses `plan` and
//! `segment_len` as intended.

mod support;

use ferry_delta::{literal_fraction, plan, segment_len, signature, DeltaStats};
use support::{bytes, parse, splitmix, sync, MAX_SIG};

const BASIS_LEN: usize = 4 * 1024 * 1024;
/// 1% of the basis, in runs of this many bytes.
const RUN: usize = 1311;
const RUNS: usize = BASIS_LEN / 100 / RUN;

fn total(stats: &[DeltaStats]) -> DeltaStats {
    let mut sum = DeltaStats::default();
    for s in stats {
        sum += *s;
    }
    sum
}

fn measure(basis: &[u8], data: &[u8]) -> DeltaStats {
    let plan = plan(basis.len() as u64, MAX_SIG).expect("plan");
    let peer = parse(signature(basis, plan));
    let index = peer.index();
    let (rebuilt, stats) = sync(&index, basis, data, segment_len(plan));
    assert!(rebuilt == data, "rebuilt data differs");
    total(&stats)
}

#[test]
fn scattered_in_place_edits_send_few_literals() {
    let basis = bytes(10, BASIS_LEN);
    let mut data = basis.clone();
    let mut rng = 11;
    for _ in 0..RUNS {
        let at = splitmix(&mut rng) as usize % (BASIS_LEN - RUN);
        let noise = bytes(splitmix(&mut rng), RUN);
        data[at..at + RUN].copy_from_slice(&noise);
    }
    let stats = measure(&basis, &data);
    assert_eq!(stats.literal + stats.copied, BASIS_LEN as u64);
    assert!(
        stats.literal < BASIS_LEN as u64 / 20,
        "{stats:?}: {:.1}% literal",
        literal_fraction(stats) * 100.0
    );
}

#[test]
fn scattered_shifting_edits_send_few_literals() {
    let basis = bytes(20, BASIS_LEN);
    let mut data = basis.clone();
    let mut rng = 21;
    for i in 0..RUNS {
        let at = splitmix(&mut rng) as usize % (data.len() - RUN);
        if i % 2 == 0 {
            data.splice(at..at, bytes(splitmix(&mut rng), RUN));
        } else {
            data.drain(at..at + RUN);
        }
    }
    let stats = measure(&basis, &data);
    assert!(
        stats.literal < BASIS_LEN as u64 / 20,
        "{stats:?}: {:.1}% literal",
        literal_fraction(stats) * 100.0
    );
}

#[test]
fn unrelated_data_is_all_literal() {
    let basis = bytes(30, 1024 * 1024);
    let data = bytes(31, 1024 * 1024);
    let stats = measure(&basis, &data);
    assert_eq!(literal_fraction(stats), 1.0);
}

//! Diff then apply reproduces the new data, with exact stats, for random bases and
//! random edits of them.

mod support;

use ferry_delta::{plan, segment_len, signature, BlockPlan, DeltaStats, MAX_BLOCK, MIN_BLOCK};
use proptest::prelude::*;
use proptest::sample::Index;
use support::{bytes, parse, sync};

#[derive(Clone, Debug)]
enum Basis {
    Random {
        seed: u64,
        len: usize,
    },
    /// A short pattern repeated: many identical blocks and rolling-checksum collisions.
    Pattern {
        seed: u64,
        period: usize,
        len: usize,
    },
    Zeros {
        len: usize,
    },
}

impl Basis {
    fn build(&self) -> Vec<u8> {
        match *self {
            Basis::Random { seed, len } => bytes(seed, len),
            Basis::Pattern { seed, period, len } => {
                bytes(seed, period).into_iter().cycle().take(len).collect()
            }
            Basis::Zeros { len } => vec![0; len],
        }
    }
}

fn basis() -> impl Strategy<Value = Basis> {
    prop_oneof![
        4 => (any::<u64>(), 0..200_000usize).prop_map(|(seed, len)| Basis::Random { seed, len }),
        1 => (any::<u64>(), 1..5000usize, 0..100_000usize)
            .prop_map(|(seed, period, len)| Basis::Pattern { seed, period, len }),
        1 => (0..50_000usize).prop_map(|len| Basis::Zeros { len }),
    ]
}

#[derive(Clone, Debug)]
enum Edit {
    Insert {
        at: Index,
        seed: u64,
        len: usize,
    },
    Delete {
        at: Index,
        len: usize,
    },
    Overwrite {
        at: Index,
        seed: u64,
        len: usize,
    },
    Append {
        seed: u64,
        len: usize,
    },
    Truncate {
        keep: Index,
    },
    /// Move a range elsewhere, as file formats that rewrite sections do.
    Move {
        from: Index,
        len: usize,
        to: Index,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    let len = 0..10_000usize;
    prop_oneof![
        (any::<Index>(), any::<u64>(), len.clone()).prop_map(|(at, seed, len)| Edit::Insert {
            at,
            seed,
            len
        }),
        (any::<Index>(), len.clone()).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<Index>(), any::<u64>(), len.clone()).prop_map(|(at, seed, len)| Edit::Overwrite {
            at,
            seed,
            len
        }),
        (any::<u64>(), len.clone()).prop_map(|(seed, len)| Edit::Append { seed, len }),
        any::<Index>().prop_map(|keep| Edit::Truncate { keep }),
        (any::<Index>(), len, any::<Index>()).prop_map(|(from, len, to)| Edit::Move {
            from,
            len,
            to
        }),
    ]
}

fn apply_edit(data: &mut Vec<u8>, edit: &Edit) {
    let pos = |at: &Index, len: usize| at.index(len + 1);
    match edit {
        Edit::Insert { at, seed, len } => {
            let at = pos(at, data.len());
            data.splice(at..at, bytes(*seed, *len));
        }
        Edit::Delete { at, len } => {
            let at = pos(at, data.len());
            let end = (at + len).min(data.len());
            data.drain(at..end);
        }
        Edit::Overwrite { at, seed, len } => {
            let at = pos(at, data.len());
            let end = (at + len).min(data.len());
            data.splice(at..end, bytes(*seed, end - at));
        }
        Edit::Append { seed, len } => data.extend(bytes(*seed, *len)),
        Edit::Truncate { keep } => data.truncate(pos(keep, data.len())),
        Edit::Move { from, len, to } => {
            let from = pos(from, data.len());
            let end = (from + len).min(data.len());
            let moved: Vec<u8> = data.drain(from..end).collect();
            let to = pos(to, data.len());
            data.splice(to..to, moved);
        }
    }
}

#[derive(Clone, Debug)]
enum NewData {
    Edited(Vec<Edit>),
    Empty,
    /// Shorter than one block: all literal.
    Short {
        seed: u64,
        len: Index,
    },
    /// The basis's own prefix, shorter than one block.
    ShortPrefix {
        len: Index,
    },
    Unrelated {
        seed: u64,
        len: usize,
    },
}

fn new_data() -> impl Strategy<Value = NewData> {
    prop_oneof![
        6 => proptest::collection::vec(edit(), 0..8).prop_map(NewData::Edited),
        1 => Just(NewData::Empty),
        1 => (any::<u64>(), any::<Index>()).prop_map(|(seed, len)| NewData::Short { seed, len }),
        1 => any::<Index>().prop_map(|len| NewData::ShortPrefix { len }),
        1 => (any::<u64>(), 0..100_000usize).prop_map(|(seed, len)| NewData::Unrelated { seed, len }),
    ]
}

fn block_plan() -> impl Strategy<Value = BlockPlan> {
    // Small blocks (peers may send any size in bounds, not just multiples of 1 KiB) so
    // that a ~200 KB basis has many of them.
    (MIN_BLOCK..=4 * MIN_BLOCK, 4..=16u32).prop_map(|(block_size, strong_len)| BlockPlan {
        block_size,
        strong_len,
    })
}

fn run(basis: &Basis, plan: BlockPlan, new: &NewData, blocks_per_segment: Option<usize>) {
    let basis = basis.build();
    let block = plan.block_size as usize;
    let data = match new {
        NewData::Edited(edits) => {
            let mut data = basis.clone();
            for e in edits {
                apply_edit(&mut data, e);
            }
            data
        }
        NewData::Empty => Vec::new(),
        NewData::Short { seed, len } => bytes(*seed, len.index(block)),
        NewData::ShortPrefix { len } => basis[..len.index(block.min(basis.len()) + 1)].to_vec(),
        NewData::Unrelated { seed, len } => bytes(*seed, *len),
    };
    let peer = parse(signature(&basis, plan));
    assert_eq!(peer.plan(), plan);
    assert_eq!(peer.block_count(), basis.len().div_ceil(block));
    let index = peer.index();
    let segment = blocks_per_segment.map_or(segment_len(plan), |n| n * block);
    let (rebuilt, stats) = sync(&index, &basis, &data, segment);
    assert!(rebuilt == data, "rebuilt data differs");
    let mut sum = DeltaStats::default();
    for s in stats {
        sum += s;
    }
    assert_eq!(sum.literal + sum.copied, data.len() as u64);
    if data.len() < block {
        assert_eq!(sum.copied, 0, "no whole block to match");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn diff_then_apply_reproduces_data(
        basis in basis(),
        plan in block_plan(),
        new in new_data(),
        blocks_per_segment in proptest::option::of(1..6usize),
    ) {
        run(&basis, plan, &new, blocks_per_segment);
    }
}

#[test]
fn unchanged_data_is_all_copies() {
    let basis = bytes(1, 300_000);
    let plan = plan(basis.len() as u64, support::MAX_SIG).expect("plan");
    let peer = parse(signature(&basis, plan));
    let index = peer.index();
    let (rebuilt, stats) = sync(&index, &basis, &basis, segment_len(plan));
    assert_eq!(rebuilt, basis);
    // Everything is copied, the short last block too (the signature carries the
    // basis length, so the aligned check knows how long that block is).
    assert_ne!(basis.len() % plan.block_size as usize, 0);
    assert_eq!(stats[0].literal, 0);
    assert_eq!(stats[0].copied, basis.len() as u64);
}

#[test]
fn largest_blocks_and_several_segments() {
    let plan = BlockPlan {
        block_size: MAX_BLOCK,
        strong_len: 16,
    };
    let basis = bytes(2, 5 * 1024 * 1024 + 12_345);
    let mut data = basis.clone();
    data.splice(1_000_000..1_000_000, bytes(3, 777));
    data[4_000_000] ^= 1;
    let peer = parse(signature(&basis, plan));
    let index = peer.index();
    let (rebuilt, stats) = sync(&index, &basis, &data, segment_len(plan));
    assert_eq!(rebuilt, data);
    assert_eq!(stats.len(), data.len().div_ceil(segment_len(plan)));
    let copied: u64 = stats.iter().map(|s| s.copied).sum();
    assert!(copied > 2 * 1024 * 1024, "{stats:?}");
}

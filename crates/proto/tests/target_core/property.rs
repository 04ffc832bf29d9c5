//! Property tests: for random trees, random frame cuts, random windows and a random
//! order of deliveries and failures, an honest source always brings the core to a
//! settled end with every entry acknowledged and every directory finished once; random
//! hostile frames never make it panic, and it stops at the first broken rule.

use std::collections::BTreeSet;

use ferry_proto::session::target::FileOutcome;
use ferry_proto::{Limits, Message, Meta};
use proptest::prelude::*;

use super::*;

/// A small deterministic generator, so a failing case replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One directory's frames, as a walker lists it.
struct Listed {
    dir: String,
    frames: Vec<Vec<Entry>>,
}

/// A random tree, listed directory by directory (each after its parent's listing),
/// with entries numbered in listing order. Returns the listings, the number of
/// entries and the directories. No frame holds more than `window` entries.
fn random_tree(rng: &mut Rng, window: u64) -> (Vec<Listed>, u64, Vec<String>) {
    let mut listings = Vec::new();
    let mut dirs = vec![String::new()];
    let mut queue = vec![(String::new(), 0u32)];
    let mut next = 0u64;
    let mut files: Vec<(u64, String)> = Vec::new();
    while let Some((path, depth)) = queue.pop() {
        let count = rng.below(6);
        let mut entries = Vec::new();
        for k in 0..count {
            let name = format!("n{k}");
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            let index = next + k;
            let entry = match rng.below(5) {
                0 if depth < 3 => {
                    dirs.push(child.clone());
                    queue.push((child, depth + 1));
                    dir(&name)
                }
                1 if !files.is_empty() => {
                    let (leader, leader_path) = &files[rng.below(files.len() as u64) as usize];
                    link(&name, *leader, leader_path)
                }
                2 => symlink(&name),
                _ => {
                    files.push((index, child));
                    file(&name, 1)
                }
            };
            entries.push(entry);
        }
        next += count;
        let mut frames = Vec::new();
        let mut rest = entries;
        loop {
            let cut = (1 + rng.below(3) as usize)
                .min(window as usize)
                .min(rest.len());
            let tail = rest.split_off(cut);
            frames.push(rest);
            rest = tail;
            if rest.is_empty() {
                break;
            }
        }
        listings.push(Listed { dir: path, frames });
    }
    (listings, next, dirs)
}

fn run_honest(seed: u64, window: u64) {
    let mut rng = Rng(seed | 1);
    let (listings, total, dirs) = random_tree(&mut rng, window);
    let limits = Limits {
        window,
        ..Limits::default()
    };
    let mut t = Target::with(limits, Filter::default());
    t.send(Message::Root {
        meta: Meta::default(),
    })
    .unwrap();
    let mut frames = Vec::new();
    let mut first = 0u64;
    for listed in listings {
        let last = listed.frames.len() - 1;
        for (i, entries) in listed.frames.into_iter().enumerate() {
            let count = entries.len() as u64;
            frames.push((list(&listed.dir, first, entries, i == last), first + count));
            first += count;
        }
    }
    let mut frames = frames.into_iter().peekable();
    let mut delivered = BTreeSet::new();
    let mut list_ended = false;
    for _step in 0..100_000 {
        let waiting: Vec<u64> = t
            .wanted
            .iter()
            .copied()
            .filter(|i| !delivered.contains(i))
            .collect();
        let can_list = frames
            .peek()
            .is_some_and(|(_, upto)| *upto <= t.last_ack() + window);
        if can_list && (waiting.is_empty() || rng.below(2) == 0) {
            let (frame, _) = frames.next().unwrap();
            t.send(frame).unwrap();
        } else if let Some(&index) = waiting.get(rng.below(waiting.len() as u64) as usize) {
            delivered.insert(index);
            t.send(data(index)).unwrap();
            t.send(file_end(index)).unwrap();
            let outcome = match rng.below(8) {
                0 => FileOutcome::Failed { draining: false },
                _ => FileOutcome::Committed,
            };
            t.file_done(index, outcome);
        } else if frames.peek().is_none() && !list_ended {
            t.send(Message::ListEnd {
                entries: total,
                read_errors: 0,
            })
            .unwrap();
            list_ended = true;
        } else {
            break;
        }
    }
    assert!(list_ended, "the listing never ended (window {window})");
    assert!(t.core.is_settled(), "not settled: seed {seed}");
    assert!(t.acks.windows(2).all(|w| w[0] < w[1]), "{:?}", t.acks);
    assert_eq!(t.last_ack(), total, "seed {seed}");
    let mut finished = t.finished.clone();
    finished.sort();
    let mut expected: Vec<String> = dirs
        .iter()
        .map(|d| if d.is_empty() { ".".into() } else { d.clone() })
        .collect();
    expected.sort();
    assert_eq!(finished, expected, "every directory finishes once");
}

fn arbitrary_message(rng: &mut Rng) -> Message {
    let index = rng.below(12);
    let names = ["a", "b", "..", "d", "a/b", ""];
    let name = names[rng.below(names.len() as u64) as usize];
    let dirs = ["", "a", "d", "x"];
    let d = dirs[rng.below(dirs.len() as u64) as usize];
    match rng.below(10) {
        0 => Message::Root {
            meta: Meta::default(),
        },
        1 | 2 => {
            let entry = match rng.below(4) {
                0 => dir(name),
                1 => link(name, rng.below(8), names[rng.below(6) as usize]),
                2 => symlink(name),
                _ => file(name, rng.below(3)),
            };
            list(d, rng.below(6), vec![entry], rng.below(2) == 0)
        }
        3 => data(index),
        4 => file_end(index),
        5 => Message::FileFailed {
            index,
            reason: ferry_proto::FileFailure::Changed,
            message: String::new(),
        },
        6 => Message::ListEnd {
            entries: rng.below(8),
            read_errors: rng.below(2),
        },
        7 => Message::Heartbeat,
        8 => Message::Ack { through: index },
        _ => Message::Hole {
            index,
            offset: rng.next(),
            len: rng.next(),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn an_honest_source_always_settles(seed in any::<u64>(), window in 1u64..8) {
        run_honest(seed, window);
    }

    #[test]
    fn hostile_frames_never_panic_and_stop_at_the_first_broken_rule(seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let mut t = Target::new();
        for _ in 0..40 {
            let message = arbitrary_message(&mut rng);
            if t.send(message).is_err() {
                break;
            }
            // The driver answers what is wanted at random, as receivers would.
            if let Some(&index) = t.wanted.last() {
                if rng.below(3) == 0 {
                    let _ = t.file_done(index, FileOutcome::Committed);
                }
            }
        }
    }
}

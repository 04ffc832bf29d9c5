//! Property tests of the source core: an honest target, played by a small model that
//! keeps the target's rules (the window, two signatures computed at a time, its
//! signature budget, one more ask after a mismatch, `Ack` then `Done`), never makes it
//! fail, in any order of wants, pieces, acks, sender progress and deliveries; random
//! hostile messages never make it panic, and never get it past its bounds.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use ferry_proto::session::source::{Ask, SourceCore, SourceEvent, Work, WorkId};
use ferry_proto::{
    ChangeKind, Content, Entry, EntryKind, ErrorClass, Limits, Message, Meta, TargetStats,
};
use proptest::prelude::*;

const SENDERS: usize = 2;

fn limits() -> Limits {
    Limits {
        window: 6,
        max_signature: 64,
        signature_window: 128,
        max_entries_per_frame: 4,
        ..Limits::default()
    }
}

/// A small deterministic generator: the model's choices come from the case's seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

fn entry(is_file: bool, k: usize) -> (Entry, Option<u64>) {
    let content = if is_file {
        Content::File {
            size: 10,
            checksum: None,
        }
    } else {
        Content::Dir
    };
    let entry = Entry {
        name: format!("e{k}").into_bytes(),
        meta: Meta::default(),
        content,
    };
    (entry, is_file.then_some(k as u64))
}

/// How the target means to ask for a file it does not have.
#[derive(Clone, Copy)]
enum Plan {
    Whole,
    Delta(usize),
    Resume,
}

/// The honest target, and the wire and the senders between it and the core.
struct Model {
    core: SourceCore<u64>,
    /// The listing window both sides were given.
    window: u64,
    rng: Rng,
    tree: Vec<bool>,
    walked: usize,
    walk_ended: bool,
    to_target: VecDeque<Message>,
    to_source: VecDeque<Message>,
    // The target.
    seen: u64,
    list_ended: Option<u64>,
    planned: BTreeMap<u64, Plan>,
    awaited: BTreeSet<u64>,
    asks: HashMap<u64, u8>,
    coming: BTreeMap<u64, usize>,
    budget: HashMap<u64, usize>,
    acked: u64,
    said_done: bool,
    // The senders.
    queued: VecDeque<Work<u64>>,
    busy: Vec<Work<u64>>,
    ended: Vec<WorkId>,
    // What the core reported.
    resolved: BTreeMap<u64, bool>,
    works: usize,
}

impl Model {
    fn new(tree: Vec<bool>, seed: u64, window: u64) -> Model {
        let limits = Limits { window, ..limits() };
        Model {
            window,
            core: SourceCore::new(limits, SENDERS, Meta::default()),
            rng: Rng(seed | 1),
            tree,
            walked: 0,
            walk_ended: false,
            to_target: VecDeque::new(),
            to_source: VecDeque::new(),
            seen: 0,
            list_ended: None,
            planned: BTreeMap::new(),
            awaited: BTreeSet::new(),
            asks: HashMap::new(),
            coming: BTreeMap::new(),
            budget: HashMap::new(),
            acked: 0,
            said_done: false,
            queued: VecDeque::new(),
            busy: Vec::new(),
            ended: Vec::new(),
            resolved: BTreeMap::new(),
            works: 0,
        }
    }

    fn drain(&mut self) {
        while let Some(m) = self.core.poll_transmit() {
            self.to_target.push_back(m);
        }
        while let Some(w) = self.core.poll_work() {
            self.works += 1;
            self.queued.push_back(w);
        }
        while let Some(e) = self.core.poll_event() {
            if let SourceEvent::Resolved(r) = e {
                for f in r.files {
                    assert_eq!(f.file, f.index, "payload of another file");
                    let again = self.resolved.insert(f.index, f.wanted);
                    assert!(again.is_none(), "file {} resolved twice", f.index);
                }
            }
        }
    }

    fn watermark(&self) -> u64 {
        let first = |s: Option<&u64>| s.copied().unwrap_or(self.seen);
        first(self.planned.keys().next())
            .min(first(self.awaited.first()))
            .min(first(self.coming.keys().next()))
    }

    /// One step chosen at random among those possible; false if none is.
    fn step(&mut self) -> bool {
        let held: usize = self.budget.values().sum();
        let room = self.core.list_room() as usize;
        let may_list = self.walked < self.tree.len() && room > 0;
        let may_end = self.walked == self.tree.len() && self.core.listed() == self.walked as u64;
        let options: [bool; 10] = [
            may_list || (may_end && !self.walk_ended),
            !self.to_target.is_empty(),
            !self.to_source.is_empty(),
            self.planned.iter().any(|(_, p)| match p {
                Plan::Delta(size) => self.coming.len() < 2 && held + size <= 128,
                _ => true,
            }),
            !self.coming.is_empty(),
            self.watermark() > self.acked,
            !self.said_done
                && self.list_ended == Some(self.seen)
                && self.watermark() == self.seen
                && self.acked == self.seen,
            !self.queued.is_empty() && self.busy.len() + self.ended.len() < SENDERS,
            !self.busy.is_empty(),
            !self.ended.is_empty(),
        ];
        let possible: Vec<usize> = (0..options.len()).filter(|&i| options[i]).collect();
        if possible.is_empty() {
            return false;
        }
        match possible[self.rng.below(possible.len())] {
            0 if may_list => {
                let n = (1 + self.rng.below(4))
                    .min(room)
                    .min(self.tree.len() - self.walked);
                let entries = (self.walked..self.walked + n)
                    .map(|k| entry(self.tree[k], k))
                    .collect();
                self.walked += n;
                self.core.list(Vec::new(), entries, true, true);
            }
            0 => {
                self.walk_ended = true;
                self.core.list_end(0);
            }
            1 => {
                let m = self.to_target.pop_front().expect("checked");
                self.target_reads(m);
            }
            2 => {
                let m = self.to_source.pop_front().expect("checked");
                if let Err(e) = self.core.handle_message(m) {
                    panic!("the core refused an honest target: {e}");
                }
            }
            3 => self.target_asks(held),
            4 => {
                let keys: Vec<u64> = self.coming.keys().copied().collect();
                let index = keys[self.rng.below(keys.len())];
                let left = self.coming[&index];
                let len = left.min(1 + self.rng.below(24));
                let last = len == left;
                if last {
                    self.coming.remove(&index);
                    self.awaited.insert(index);
                } else {
                    self.coming.insert(index, left - len);
                }
                let bytes = vec![0u8; len].into();
                self.to_source
                    .push_back(Message::Signature { index, bytes, last });
            }
            5 => {
                self.acked = self.watermark();
                self.to_source.push_back(Message::Ack {
                    through: self.acked,
                });
            }
            6 => {
                self.said_done = true;
                self.to_source.push_back(Message::Done {
                    stats: TargetStats::default(),
                });
            }
            7 => {
                let w = self.queued.pop_front().expect("checked");
                self.busy.push(w);
            }
            8 => {
                let w = self.busy.remove(self.rng.below(self.busy.len()));
                self.to_target.push_back(Message::FileEnd {
                    index: w.index,
                    size: 10,
                    hash: [0; 32],
                });
                self.ended.push(w.id);
            }
            _ => {
                let id = self.ended.remove(self.rng.below(self.ended.len()));
                self.core.handle_answered(id);
            }
        }
        self.drain();
        true
    }

    fn target_reads(&mut self, m: Message) {
        match m {
            Message::List { first, entries, .. } => {
                assert_eq!(first, self.seen, "frames out of order");
                let end = first + entries.len() as u64;
                assert!(
                    end <= self.acked + self.window,
                    "listed through {end}, past the window of {} after the Ack through {}",
                    self.window,
                    self.acked
                );
                for (k, e) in entries.iter().enumerate() {
                    let index = first + k as u64;
                    if matches!(e.content, Content::File { .. }) && self.rng.chance(60) {
                        let plan = match self.rng.below(3) {
                            0 => Plan::Whole,
                            1 => Plan::Delta(self.rng.below(65)),
                            _ => Plan::Resume,
                        };
                        self.planned.insert(index, plan);
                    }
                }
                self.seen += entries.len() as u64;
            }
            Message::ListEnd { entries, .. } => {
                assert_eq!(entries, self.seen);
                self.list_ended = Some(entries);
            }
            Message::FileEnd { index, .. } => {
                self.budget.remove(&index);
                assert!(
                    self.awaited.remove(&index),
                    "content of {index} not awaited"
                );
                if self.asks[&index] == 1 && self.rng.chance(20) {
                    self.planned.insert(index, Plan::Whole);
                }
            }
            Message::Root { .. } => {}
            other => panic!("the source sent {other:?}"),
        }
    }

    fn target_asks(&mut self, held: usize) {
        let ready: Vec<u64> = self
            .planned
            .iter()
            .filter(|(_, p)| match p {
                Plan::Delta(size) => self.coming.len() < 2 && held + size <= 128,
                _ => true,
            })
            .map(|(&i, _)| i)
            .collect();
        let index = ready[self.rng.below(ready.len())];
        let plan = self.planned.remove(&index).expect("ready");
        *self.asks.entry(index).or_default() += 1;
        let m = match plan {
            Plan::Whole => Message::Want {
                index,
                delta: false,
            },
            Plan::Resume => Message::Resume {
                index,
                offset: 3,
                hash: [1; 32],
            },
            Plan::Delta(size) => {
                self.coming.insert(index, size);
                self.budget.insert(index, size);
                Message::Want { index, delta: true }
            }
        };
        if !matches!(plan, Plan::Delta(_)) {
            self.awaited.insert(index);
        }
        self.to_source.push_back(m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn an_honest_target_in_any_order_never_fails_and_ends_done(
        tree in proptest::collection::vec(proptest::bool::weighted(0.7), 0..40),
        seed in any::<u64>(),
        window in 1u64..8,
    ) {
        let mut model = Model::new(tree.clone(), seed, window);
        model.drain();
        let mut steps = 0;
        while !model.core.is_done() {
            prop_assert!(model.step(), "stuck after {steps} steps");
            steps += 1;
            prop_assert!(steps < 100_000, "no end after {steps} steps");
            prop_assert!(model.core.signature_bytes() <= 128 + SENDERS * 64);
        }
        let files: Vec<u64> = (0..tree.len()).filter(|&k| tree[k]).map(|k| k as u64).collect();
        let resolved: Vec<u64> = model.resolved.keys().copied().collect();
        prop_assert_eq!(resolved, files, "every file is resolved once");
        for (index, wanted) in &model.resolved {
            prop_assert_eq!(*wanted, model.asks.contains_key(index));
        }
        let asked: usize = model.asks.values().map(|&n| n as usize).sum();
        prop_assert_eq!(model.works, asked, "one piece of work per ask");
    }
}

/// What a hostile target (or the driver) does next.
#[derive(Clone, Debug)]
enum Op {
    List(usize),
    ListEnd,
    Answer(u64),
    Receive(Message),
}

fn hostile_message() -> impl Strategy<Value = Message> {
    let index = 0u64..24;
    prop_oneof![
        (index.clone(), any::<bool>()).prop_map(|(index, delta)| Message::Want { index, delta }),
        (index.clone(), any::<u64>()).prop_map(|(index, offset)| Message::Resume {
            index,
            offset,
            hash: [0; 32]
        }),
        (index.clone(), 0usize..80, any::<bool>()).prop_map(|(index, len, last)| {
            Message::Signature {
                index,
                bytes: vec![9u8; len].into(),
                last,
            }
        }),
        (0u64..30).prop_map(|through| Message::Ack { through }),
        Just(Message::Done {
            stats: TargetStats::default()
        }),
        Just(Message::Heartbeat),
        Just(Message::Change {
            path: b"x".to_vec(),
            kind: ChangeKind::Deleted,
            entry: EntryKind::File
        }),
        Just(Message::Error {
            class: ErrorClass::FileIo,
            message: "full".into()
        }),
        (index.clone()).prop_map(|index| Message::FileEnd {
            index,
            size: 1,
            hash: [0; 32]
        }),
        Just(Message::ListEnd {
            entries: 3,
            read_errors: 0
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..5).prop_map(Op::List),
        Just(Op::ListEnd),
        (0u64..40).prop_map(Op::Answer),
        hostile_message().prop_map(Op::Receive),
        hostile_message().prop_map(Op::Receive),
        hostile_message().prop_map(Op::Receive),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn hostile_messages_never_panic_nor_pass_the_bounds(ops in proptest::collection::vec(op(), 0..120)) {
        let mut core: SourceCore<u64> = SourceCore::new(limits(), SENDERS, Meta::default());
        let (mut listed_files, mut ended, mut failed) = (0usize, false, None);
        let mut works: Vec<WorkId> = Vec::new();
        for op in ops {
            match op {
                Op::List(n) if !ended => {
                    let n = n.min(core.list_room() as usize);
                    let first = core.listed() as usize;
                    let entries: Vec<_> = (first..first + n).map(|k| entry(k % 3 != 2, k)).collect();
                    listed_files += entries.iter().filter(|(_, f)| f.is_some()).count();
                    core.list(Vec::new(), entries, true, true);
                }
                Op::List(_) => {}
                Op::ListEnd if !ended => {
                    ended = true;
                    core.list_end(0);
                }
                Op::ListEnd => {}
                Op::Answer(k) => {
                    if let Some(&id) = works.get(k as usize) {
                        core.handle_answered(id);
                    }
                }
                Op::Receive(m) => match (core.handle_message(m), &failed) {
                    (Err(e), None) => failed = Some(e),
                    (Err(e), Some(first)) => prop_assert_eq!(&e, first),
                    (Ok(()), None) => {}
                    (Ok(()), Some(first)) => prop_assert!(false, "accepted after {first}"),
                },
            }
            while let Some(w) = core.poll_work() {
                if let Ask::Delta(signature) = &w.ask {
                    prop_assert!(signature.len() <= 64);
                }
                works.push(w.id);
            }
            while core.poll_transmit().is_some() {}
            while core.poll_event().is_some() {}
            prop_assert!(core.signature_bytes() <= 128 + SENDERS * 64);
            prop_assert!(works.len() <= 2 * listed_files, "{} works for {listed_files} files", works.len());
            prop_assert!(core.listed() <= core.acked() + limits().window);
        }
    }
}

//! The pair over several streams: per-stream FIFOs each way, the stream that delivers
//! next picked at random (frames of different streams overtake each other), whole small
//! files in `Wants`/`Files`, and a data stream cut mid-transfer. Two honest cores always
//! end with the source's tree: a lost stream's files are asked again on the others, and
//! nothing between them is ever a protocol error.

use proptest::prelude::*;

use super::tree::{Node, Tree};
use super::*;

fn empty() -> Tree {
    let mut tree = Tree::default();
    tree.0.insert(String::new(), Node::Dir);
    tree
}

#[track_caller]
fn converges(pair: &mut Pair, source: &Tree, what: &str) {
    assert_eq!(pair.run(), End::Converged, "{what}");
    assert_eq!(pair.target.tree.seen(), source.seen(), "{what}");
    assert_eq!(pair.target.file_errors, 0, "{what}");
}

#[test]
fn trees_move_whole_over_four_streams_some_files_in_files_frames() {
    let (mut wants, mut files_frames) = (0, 0);
    for seed in 0..10 {
        let source = Tree::random(&mut Dice::new(seed + 7), 2);
        let mut pair = Pair::with_streams(source.clone(), empty(), 3, Fault::None, seed, 4);
        converges(&mut pair, &source, &format!("seed {seed}"));
        wants += pair.target.wants;
        files_frames += pair.source.files_frames;
    }
    assert!(wants > 10, "the trees hold few files ({wants})");
    assert!(
        files_frames > 0,
        "no whole small file went in a Files frame"
    );
}

#[test]
fn a_second_pass_over_several_streams_asks_for_nothing() {
    let source = Tree::random(&mut Dice::new(11), 1);
    let mut pair = Pair::with_streams(source.clone(), source.clone(), 4, Fault::None, 2, 3);
    converges(&mut pair, &source, "second pass");
    assert_eq!(pair.target.wants, 0);
}

#[test]
fn a_cut_stream_s_files_are_asked_again_on_the_others() {
    // Over many seeds and cut points some files were in flight on the cut stream: each
    // run still converges, and some of them needed re-asks.
    let mut reasked = 0;
    for seed in 0..40u64 {
        let source = Tree::random(&mut Dice::new(seed + 100), 1);
        let fault = Fault::CutStream {
            stream: 1,
            nth: 5 + seed % 20,
        };
        let mut pair = Pair::with_streams(source.clone(), empty(), 4, fault, seed, 3);
        converges(&mut pair, &source, &format!("seed {seed}"));
        reasked += pair.target.reasked;
    }
    assert!(reasked > 0, "no run had a file in flight on the cut stream");
}

/// The source's tree with every file's content changed: each is asked for as a delta,
/// its signature in two pieces.
fn changed(source: &Tree) -> Tree {
    let mut target = source.clone();
    for node in target.0.values_mut() {
        if let Node::File(bytes) = node {
            bytes.push(b'!');
        }
    }
    target
}

#[test]
fn deltas_in_flight_on_a_cut_stream_are_asked_again_only_after_both_stream_gones() {
    // A delta asked on the cut stream whose signature's second piece was lost leaves
    // the source waiting for it until it hears the loss: asked again before that, the
    // file would be refused as asked again while its signature was still coming.
    let mut reasked = 0;
    for seed in 0..200u64 {
        let source = Tree::random(&mut Dice::new(seed + 300), 2);
        let fault = Fault::CutStream {
            stream: 1,
            nth: 3 + seed % 30,
        };
        let mut pair = Pair::with_streams(source.clone(), changed(&source), 6, fault, seed, 2);
        converges(&mut pair, &source, &format!("seed {seed}"));
        reasked += pair.target.reasked;
    }
    assert!(
        reasked > 0,
        "no run had a delta in flight on the cut stream"
    );
}

#[test]
fn corrupted_data_over_several_streams_is_sent_again() {
    let mut tree = empty();
    tree.0
        .insert("a".into(), Node::File(b"hello world".to_vec()));
    tree.0.insert("b".into(), Node::File(b"and more".to_vec()));
    let mut pair = Pair::with_streams(
        tree.clone(),
        empty(),
        8,
        Fault::CorruptData { nth: 1 },
        4,
        2,
    );
    converges(&mut pair, &tree, "corrupted");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Random trees, windows, 2 to 4 streams and cross-stream interleavings: an honest
    /// pair converges to the source's tree.
    #[test]
    fn honest_pairs_over_streams_converge(
        seed in any::<u64>(),
        window in 1u64..6,
        streams in 2u16..5,
        flavour in 0u64..3,
    ) {
        let mut rng = Dice::new(seed);
        let source = Tree::random(&mut rng, flavour);
        let target = Tree::random(&mut rng, flavour);
        let mut pair = Pair::with_streams(source.clone(), target, window, Fault::None, seed, streams);
        prop_assert_eq!(pair.run(), End::Converged);
        prop_assert_eq!(pair.target.tree.seen(), source.seen());
    }

    /// A data stream cut anywhere in the run, each side noticing it in its own time (or
    /// hearing the other's StreamGone first): still the source's tree, never a protocol
    /// error between two honest cores.
    #[test]
    fn a_stream_cut_mid_transfer_still_converges(
        seed in any::<u64>(),
        window in 1u64..6,
        streams in 2u16..5,
        cut in 1u16..4,
        nth in 0u64..80,
    ) {
        let mut rng = Dice::new(seed);
        let source = Tree::random(&mut rng, 1);
        let target = Tree::random(&mut rng, 1);
        let fault = Fault::CutStream { stream: cut.min(streams - 1), nth };
        let mut pair = Pair::with_streams(source.clone(), target, window, fault, seed, streams);
        let end = pair.run();
        prop_assert_eq!(&end, &End::Converged, "{:?}", fault);
        prop_assert_eq!(pair.target.tree.seen(), source.seen(), "{:?}", fault);
    }
}

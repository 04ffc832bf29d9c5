//! What the pair must show: an honest session makes the target's tree the source's, on a
//! first pass and on a later one; with a fault, each run either still converges to the
//! same tree or stops with a classified error, never panics, never loops.

use proptest::prelude::*;

use super::tree::{Node, Tree};
use super::*;

fn converges(source: &Tree, target: &Tree, window: u64, seed: u64) -> Pair {
    let mut pair = Pair::new(source.clone(), target.clone(), window, Fault::None, seed);
    assert_eq!(pair.run(), End::Converged, "seed {seed}, window {window}");
    assert_eq!(
        pair.target.tree.seen(),
        source.seen(),
        "the target's tree is not the source's (seed {seed})"
    );
    assert_eq!(pair.target.file_errors, 0);
    pair
}

#[test]
fn a_tree_moves_whole_into_an_empty_volume() {
    let mut rng = Dice::new(7);
    let source = Tree::random(&mut rng, 1);
    let mut empty = Tree::default();
    empty.0.insert(String::new(), Node::Dir);
    converges(&source, &empty, 3, 1);
}

#[test]
fn a_second_pass_asks_for_nothing() {
    let mut rng = Dice::new(11);
    let source = Tree::random(&mut rng, 1);
    let pair = converges(&source, &source, 4, 2);
    assert_eq!(
        pair.target.wants, 0,
        "an unchanged tree has nothing to send"
    );
}

#[test]
fn extras_are_deleted_and_changed_files_replaced() {
    let mut rng = Dice::new(5);
    let source = Tree::random(&mut rng, 1);
    let mut target = Tree::random(&mut Dice::new(99), 1);
    target
        .0
        .insert("zz-extra".into(), Node::File(b"old".to_vec()));
    converges(&source, &target, 2, 3);
}

#[test]
fn a_corrupted_file_is_sent_again_and_lands_whole() {
    let mut tree = Tree::default();
    tree.0.insert(String::new(), Node::Dir);
    tree.0
        .insert("a".into(), Node::File(b"hello world".to_vec()));
    let mut empty = Tree::default();
    empty.0.insert(String::new(), Node::Dir);
    let mut pair = Pair::new(tree.clone(), empty, 8, Fault::CorruptData { nth: 1 }, 4);
    assert_eq!(pair.run(), End::Converged);
    assert_eq!(pair.target.tree.seen(), tree.seen());
}

#[test]
fn a_cut_connection_ends_as_closed_not_done() {
    let mut rng = Dice::new(3);
    let source = Tree::random(&mut rng, 1);
    let mut empty = Tree::default();
    empty.0.insert(String::new(), Node::Dir);
    let fault = Fault::Cut {
        way: Way::ToTarget,
        nth: 1,
    };
    let mut pair = Pair::new(source, empty, 4, fault, 5);
    assert_eq!(pair.run(), End::Closed);
    assert!(!pair.source.done, "the source cannot have heard Done");
}

#[test]
fn a_garbled_frame_is_a_codec_error() {
    let mut rng = Dice::new(3);
    let source = Tree::random(&mut rng, 1);
    let fault = Fault::Garble {
        way: Way::ToTarget,
        nth: 0,
    };
    let mut pair = Pair::new(source.clone(), source, 4, fault, 6);
    assert!(matches!(pair.run(), End::Codec(_)));
}

fn fault(kind: u64, way: bool, nth: u64) -> Fault {
    let way = if way { Way::ToTarget } else { Way::ToSource };
    match kind {
        0 => Fault::None,
        1 => Fault::Cut { way, nth },
        2 => Fault::Drop { way, nth },
        3 => Fault::Repeat { way, nth },
        4 => Fault::Garble { way, nth },
        _ => Fault::CorruptData { nth: nth + 1 },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random trees on both sides, random windows, frame cuts and interleavings: an
    /// honest pair always converges to the source's tree.
    #[test]
    fn honest_pairs_converge(seed in any::<u64>(), window in 1u64..6, flavour in 0u64..3) {
        let mut rng = Dice::new(seed);
        let source = Tree::random(&mut rng, flavour);
        let target = Tree::random(&mut rng, flavour);
        converges(&source, &target, window, seed);
    }

    /// With one fault anywhere: no panic, an end within the step bound, and never a
    /// converged run whose trees differ. A fault that loses nothing (data corrupted on
    /// the way is caught and sent again) still converges.
    #[test]
    fn faulty_pairs_converge_or_stop_classified(
        seed in any::<u64>(),
        window in 1u64..6,
        kind in 0u64..6,
        way in any::<bool>(),
        nth in 0u64..40,
    ) {
        let mut rng = Dice::new(seed);
        let source = Tree::random(&mut rng, 1);
        let target = Tree::random(&mut rng, 1);
        let fault = fault(kind, way, nth);
        let mut pair = Pair::new(source.clone(), target, window, fault, seed);
        let end = pair.run();
        if end == End::Converged {
            prop_assert_eq!(pair.target.tree.seen(), source.seen(), "{:?}", fault);
        }
        if matches!(fault, Fault::None | Fault::CorruptData { .. }) {
            prop_assert_eq!(end, End::Converged, "{:?}", fault);
        }
    }
}

use std::sync::OnceLock;

use super::*;

const KIB: u64 = 1024;

/// Pseudo-random bytes enough for the largest size tested (xorshift: no two ranges alike,
/// so a range put in the wrong place changes the hash).
fn data() -> &'static [u8] {
    static DATA: OnceLock<Vec<u8>> = OnceLock::new();
    DATA.get_or_init(|| {
        let len = (5 * RANGE + 2 * KIB) as usize;
        let mut out = Vec::with_capacity(len + 8);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.truncate(len);
        out
    })
}

/// The sizes around every range boundary up to five ranges, and single-range files.
fn sizes() -> Vec<u64> {
    let mut sizes = vec![0, 1, KIB, KIB + 1, RANGE - 1, RANGE];
    for k in 1..=5 {
        for extra in [0, 1, 1023, 1024, 1025] {
            sizes.push(k * RANGE + extra);
        }
    }
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

fn values(size: u64) -> Vec<[u8; 32]> {
    let bytes = &data()[..size as usize];
    (0..range_count(size))
        .map(|k| {
            let offset = k * RANGE;
            let end = offset + range_len(size, offset);
            range_value(size, offset, &bytes[offset as usize..end as usize])
        })
        .collect()
}

/// A permutation of `0..n` from `seed` (Fisher-Yates over xorshift).
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

#[test]
fn combined_range_values_are_the_files_blake3() {
    for size in sizes() {
        let expected = *blake3::hash(&data()[..size as usize]).as_bytes();
        let values = values(size);
        assert_eq!(combine(size, &values), Some(expected), "size {size}");
    }
}

#[test]
fn ranges_merged_in_any_order_give_the_files_blake3_in_bounded_memory() {
    for size in sizes() {
        let expected = *blake3::hash(&data()[..size as usize]).as_bytes();
        let values = values(size);
        let n = range_count(size);
        let orders = [
            (0..n).collect::<Vec<_>>(),
            (0..n).rev().collect(),
            shuffled(n, size),
            shuffled(n, size ^ 0xdead_beef),
        ];
        for order in orders {
            let mut merger = RangeMerger::new(size);
            for (i, &k) in order.iter().enumerate() {
                assert_eq!(
                    merger.hash(),
                    None,
                    "size {size}: a hash before every range"
                );
                merger.add(k * RANGE, values[k as usize]).unwrap();
                // The prefix's subtrees: at most one per bit of the ranges merged.
                assert!(
                    merger.stack.len() as u32 <= 64 - n.leading_zeros(),
                    "size {size}"
                );
                assert_eq!(merger.waiting() + merger.next as usize, i + 1);
            }
            assert_eq!(
                merger.hash(),
                Some(expected),
                "size {size}, order {order:?}"
            );
            assert_eq!(merger.prefix(), size);
        }
    }
}

#[test]
fn a_range_hashed_piece_by_piece_has_the_same_value() {
    let size = 3 * RANGE + 1025;
    let bytes = &data()[..size as usize];
    for offset in [0, RANGE, 3 * RANGE] {
        let end = (offset + range_len(size, offset)) as usize;
        let range = &bytes[offset as usize..end];
        let mut hasher = RangeHasher::new(size, offset);
        for piece in range.chunks(256 * 1024 + 7) {
            hasher.update(piece);
        }
        assert_eq!(hasher.value(), range_value(size, offset, range));
    }
}

#[test]
fn a_changed_or_misplaced_range_changes_the_hash() {
    let size = 4 * RANGE + 1;
    let expected = *blake3::hash(&data()[..size as usize]).as_bytes();
    let mut values = values(size);
    values.swap(1, 2);
    assert_ne!(combine(size, &values), Some(expected), "ranges swapped");
    values.swap(1, 2);
    values[3][0] ^= 1;
    assert_ne!(combine(size, &values), Some(expected), "one value changed");
}

#[test]
fn combine_wants_one_value_per_range() {
    let size = 2 * RANGE + 1;
    let values = values(size);
    assert!(combine(size, &values[..2]).is_none());
    let mut more = values.clone();
    more.push([0; 32]);
    assert!(combine(size, &more).is_none());
}

#[test]
fn a_range_not_of_the_file_or_added_twice_is_refused() {
    let size = 3 * RANGE + 10;
    let values = values(size);
    let mut merger = RangeMerger::new(size);
    for offset in [1, RANGE + KIB, 4 * RANGE, u64::MAX] {
        assert_eq!(
            merger.add(offset, [0; 32]),
            Err(RangeError::NotARange { offset, size })
        );
    }
    merger.add(2 * RANGE, values[2]).unwrap();
    assert_eq!(
        merger.add(2 * RANGE, values[2]),
        Err(RangeError::Twice { offset: 2 * RANGE }),
        "twice while waiting"
    );
    merger.add(0, values[0]).unwrap();
    assert_eq!(merger.prefix(), RANGE);
    assert_eq!(
        merger.add(0, values[0]),
        Err(RangeError::Twice { offset: 0 }),
        "twice once merged"
    );
    merger.add(RANGE, values[1]).unwrap();
    assert_eq!(merger.prefix(), 3 * RANGE);
    merger.add(3 * RANGE, values[3]).unwrap();
    assert_eq!(
        merger.hash(),
        Some(*blake3::hash(&data()[..size as usize]).as_bytes())
    );
}

#[test]
#[should_panic(expected = "range at 1024 of a")]
fn a_hasher_for_an_unaligned_range_is_a_bug() {
    let _ = RangeHasher::new(4 * RANGE, KIB);
}

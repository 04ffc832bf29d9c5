//! Checks on `ferry_delta`'s two parsers of peer input, shared by the fuzz targets
//! `signature_parser` and `delta_apply` and by `crates/delta/tests/fuzz_corpus.rs` (which
//! includes this file with `#[path]`, so it may use only `ferry_delta` and std).
//!
//! Every check panics on a violation; a panic is what libFuzzer reports as a crash.

use ferry_delta::{apply_segment, diff_segment, PeerSignature, MAX_BLOCK, MIN_BLOCK};

/// The signature limit the engine uses (`Limits::default().max_signature`).
pub const MAX_SIGNATURE: usize = 32 * 1024 * 1024;

/// Basis lengths above this are not rebuilt for the apply check in [`signature_parser`]
/// (a 4 KiB signature can describe gigabytes of basis).
const MAX_CHECK_BASIS: usize = 4 * 1024 * 1024;

/// New data for the delta search: deterministic, a few blocks long, and containing
/// [`basis`] so signatures of it find matches.
pub fn search_data() -> Vec<u8> {
    let mut data = noise(7, 1000);
    data.extend_from_slice(&basis());
    data.extend_from_slice(&noise(11, 3000));
    data
}

/// The basis the seed signatures are made from: three and a half minimum-size blocks.
pub fn basis() -> Vec<u8> {
    noise(3, MIN_BLOCK as usize * 7 / 2)
}

/// Deterministic bytes (splitmix64).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A signature from the peer.
///
/// * `parse` never panics, and refuses anything over its size limit.
/// * What it accepts has a plan inside the documented bounds and a whole number of
///   entries.
/// * `index()` and `diff_segment` over [`search_data`] terminate without panicking; the
///   delta accounts for every byte of the data and leaves the prefix of `out` alone.
/// * That delta is accepted by `apply_segment` against a basis as long as the signature
///   says (the content of the basis does not matter to the bounds) and rebuilds exactly
///   as many bytes as the data.
pub fn signature_parser(data: &[u8]) {
    if !data.is_empty() {
        assert!(
            PeerSignature::parse(data.to_vec(), data.len() - 1).is_err(),
            "a signature over the limit was accepted"
        );
    }
    let peer = match PeerSignature::parse(data.to_vec(), MAX_SIGNATURE) {
        Ok(peer) => peer,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let plan = peer.plan();
    assert!(
        (MIN_BLOCK..=MAX_BLOCK).contains(&plan.block_size),
        "{plan:?}"
    );
    assert!((4..=16).contains(&plan.strong_len), "{plan:?}");
    let entry = 4 + plan.strong_len as usize;
    assert_eq!(peer.block_count() * entry + 20, data.len(), "{plan:?}");
    assert_eq!(
        peer.block_count() as u64,
        peer.basis_len().div_ceil(u64::from(plan.block_size)),
        "{plan:?}"
    );

    let index = peer.index();
    assert_eq!(index.plan(), plan);
    let new = search_data();
    let mut delta = b"prefix".to_vec();
    let stats = diff_segment(&index, &new, &mut delta).expect("diff against a parsed signature");
    assert_eq!(stats.literal + stats.copied, new.len() as u64);
    assert_eq!(
        &delta[..6],
        b"prefix",
        "diff_segment touched what was in `out`"
    );

    let basis_len = peer.basis_len();
    if basis_len <= MAX_CHECK_BASIS as u64 {
        let basis_len = basis_len as usize;
        let fake_basis = vec![0; basis_len];
        let mut out = Vec::new();
        let applied = apply_segment(&fake_basis, &delta[6..], new.len(), &mut out)
            .expect("apply_segment refused diff_segment's own delta");
        assert_eq!(applied, stats);
        assert_eq!(out.len(), new.len());
    }
}

/// Splits a fuzz input for [`delta_apply`]: `expected_len` (u16 LE), `basis_len` (u16 LE,
/// cut to what is there), the basis, then the delta.
pub fn split_apply_input(data: &[u8]) -> Option<(usize, &[u8], &[u8])> {
    let (head, rest) = data.split_first_chunk::<4>()?;
    let expected_len = usize::from(u16::from_le_bytes([head[0], head[1]]));
    let basis_len = usize::from(u16::from_le_bytes([head[2], head[3]])).min(rest.len());
    let (basis, delta) = rest.split_at(basis_len);
    Some((expected_len, basis, delta))
}

/// The inverse of [`split_apply_input`], for the seed generator.
pub fn join_apply_input(expected_len: u16, basis: &[u8], delta: &[u8]) -> Vec<u8> {
    let basis_len = u16::try_from(basis.len()).expect("seed basis under 64 KiB");
    let mut input = expected_len.to_le_bytes().to_vec();
    input.extend_from_slice(&basis_len.to_le_bytes());
    input.extend_from_slice(basis);
    input.extend_from_slice(delta);
    input
}

/// A delta from the peer, applied to a basis.
///
/// * `apply_segment` never panics.
/// * It agrees with [`reference_apply`], a plain reading of the documented format: same
///   verdict, and on success the same bytes, exactly `expected_len` of them, appended after
///   what `out` held.
/// * On error `out` is left as it was.
pub fn delta_apply(data: &[u8]) {
    let Some((expected_len, basis, delta)) = split_apply_input(data) else {
        return;
    };
    let mut out = b"prefix".to_vec();
    let result = apply_segment(basis, delta, expected_len, &mut out);
    let reference = reference_apply(basis, delta, expected_len);
    match (result, reference) {
        (Ok(stats), Ok(expected)) => {
            assert_eq!(
                &out[..6],
                b"prefix",
                "apply_segment touched what was in `out`"
            );
            assert_eq!(out.len() - 6, expected_len);
            assert_eq!(stats.literal + stats.copied, expected_len as u64);
            assert!(
                out[6..] == expected[..],
                "apply_segment rebuilt other bytes"
            );
        }
        (Err(error), Err(why)) => {
            let _ = (error.to_string(), why);
            assert_eq!(out, b"prefix", "apply_segment changed `out` on error");
        }
        (Ok(_), Err(why)) => panic!("apply_segment accepted a delta the format refuses: {why}"),
        (Err(error), Ok(_)) => panic!("apply_segment refused a valid delta: {error}"),
    }
}

/// An independent, obviously-bounded reading of fast_rsync's delta format as
/// `ferry_delta`'s docs state it (crates/delta/src/scan.rs): magic `0x72730236`, then
/// commands, `END`, nothing after. Zero-length commands, copies outside the basis and any
/// output other than exactly `expected_len` bytes are refused.
pub fn reference_apply(
    basis: &[u8],
    delta: &[u8],
    expected_len: usize,
) -> Result<Vec<u8>, &'static str> {
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
        if rest.len() < n {
            return Err("truncated");
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head)
    }
    fn uint(rest: &mut &[u8], n: usize) -> Result<u64, &'static str> {
        Ok(take(rest, n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
    let mut rest = delta;
    if uint(&mut rest, 4)? != 0x7273_0236 {
        return Err("magic");
    }
    let mut out = Vec::new();
    loop {
        let cmd = take(&mut rest, 1)?[0];
        match cmd {
            0 => break,
            1..=0x40 => out.extend_from_slice(take(&mut rest, usize::from(cmd))?),
            0x41..=0x44 => {
                let len = uint(&mut rest, 1 << (cmd - 0x41))?;
                if len == 0 {
                    return Err("empty literal");
                }
                let len = usize::try_from(len).map_err(|_| "truncated")?;
                out.extend_from_slice(take(&mut rest, len)?);
            }
            0x45..=0x54 => {
                let mode = cmd - 0x45;
                let offset = uint(&mut rest, 1 << (mode / 4))?;
                let len = uint(&mut rest, 1 << (mode % 4))?;
                if len == 0 {
                    return Err("empty copy");
                }
                let end = offset.checked_add(len).ok_or("copy overflows")?;
                if end > basis.len() as u64 {
                    return Err("copy outside the basis");
                }
                out.extend_from_slice(&basis[offset as usize..end as usize]);
            }
            _ => return Err("unknown command"),
        }
        if out.len() > expected_len {
            // Refused either way; stop before a hostile delta makes this big.
            return Err("too long");
        }
    }
    if !rest.is_empty() {
        return Err("bytes after END");
    }
    if out.len() != expected_len {
        return Err("wrong length");
    }
    Ok(out)
}

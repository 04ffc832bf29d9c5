//! The compiled form of a filter: every rule's pattern laid side by side in one bit vector
//! and run as a bit-parallel NFA (shift-and), so one pass over a path matches all the rules
//! at once.
//!
//! Each rule with `n` pattern elements owns `n + 1` bits: bit `j` is "the first `j`
//! elements matched so far", the last bit is "the whole pattern matched". A path byte moves
//! every live bit through its element in a few word operations: a literal byte or `?`
//! shifts it one bit up, `*` and `**` keep it where it is, and a star also lets it skip
//! past (a star may match nothing). A rule's last bit has no element, so nothing carries
//! from one rule into the next.
//!
//! The cost of one path is `path length x words` word steps, `words` being the total bits
//! over 64, whatever the patterns are: no backtracking, so no pattern (`*a*a*a...b`,
//! `**/**/...`) can make a path cost more. [`super::MAX_FILTER_BYTES`] bounds `words`.

use std::sync::Mutex;

use super::Rule;

/// One element of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    /// This byte.
    Byte(u8),
    /// `?`: one byte but `/`.
    Any,
    /// `*`: any run of bytes without `/`.
    Star,
    /// `**` (or more stars): any run of bytes.
    AnyRun,
}

impl Element {
    fn is_star(self) -> bool {
        matches!(self, Element::Star | Element::AnyRun)
    }
}

/// The elements of a pattern's body. A run of two or more stars is one `**` (`***` is `**`
/// then `*`, which matches what `**` matches), so no two stars are ever adjacent: one
/// skip step finds every state a star leads to.
fn elements(body: &[u8]) -> Vec<Element> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let element = match body[i] {
            b'*' => {
                let run = body[i..].iter().take_while(|&&b| b == b'*').count();
                i += run;
                out.push(if run >= 2 {
                    Element::AnyRun
                } else {
                    Element::Star
                });
                continue;
            }
            b'?' => Element::Any,
            byte => Element::Byte(byte),
        };
        out.push(element);
        i += 1;
    }
    out
}

/// Row of [`Program::rows`] for bytes no pattern names (only `?` moves on them).
const ROW_OTHER: u8 = 0;
/// Row for `/`, which `?` does not match.
const ROW_SLASH: u8 = 1;

/// Every rule of a filter, compiled. Bit vectors are `words` long.
#[derive(Clone, Default)]
pub(super) struct Program {
    words: usize,
    /// Which row of `rows` a path byte uses.
    row_of: Vec<u8>,
    /// Per row, the bits a byte of that row moves one step on (its literal, and `?`).
    rows: Vec<u64>,
    /// Bits that stay on any byte but `/` (`*` and `**`), and on `/` (`**`).
    stay: Vec<u64>,
    stay_on_slash: Vec<u64>,
    /// Bits whose element may match nothing (`*` and `**`).
    stars: Vec<u64>,
    /// Live bits before the first byte: every rule's first bit (and what its stars skip to).
    start: Vec<u64>,
    /// Bits started again after each `/`: the unanchored rules, which may match the
    /// path's trailing components.
    restart: Vec<u64>,
    /// The last bit of each rule; of the rules that also match files.
    accept_dirs: Vec<u64>,
    accept_files: Vec<u64>,
    /// The last bit of rule `i`, ascending.
    last_bit: Vec<usize>,
}

impl Program {
    pub(super) fn compile(rules: &[Rule]) -> Program {
        let patterns: Vec<Vec<Element>> = rules.iter().map(|r| elements(&r.body)).collect();
        let bits: usize = patterns.iter().map(|p| p.len() + 1).sum();
        let words = bits.div_ceil(64);
        let mut row_of = vec![ROW_OTHER; 256];
        row_of[usize::from(b'/')] = ROW_SLASH;
        let mut row_count = 2u8;
        for element in patterns.iter().flatten() {
            if let Element::Byte(byte) = *element {
                if row_of[usize::from(byte)] == ROW_OTHER {
                    // At most 253 distinct bytes (no NUL, `*` or `?`) besides `/`.
                    row_of[usize::from(byte)] = row_count;
                    row_count += 1;
                }
            }
        }
        let zeros = vec![0u64; words];
        let mut p = Program {
            words,
            row_of,
            rows: vec![0; usize::from(row_count) * words],
            stay: zeros.clone(),
            stay_on_slash: zeros.clone(),
            stars: zeros.clone(),
            start: zeros.clone(),
            restart: zeros.clone(),
            accept_dirs: zeros.clone(),
            accept_files: zeros,
            last_bit: Vec::with_capacity(rules.len()),
        };
        let mut any = vec![0u64; words];
        let mut base = 0;
        for (rule, pattern) in rules.iter().zip(&patterns) {
            for (j, element) in pattern.iter().enumerate() {
                let bit = base + j;
                match *element {
                    Element::Byte(byte) => {
                        let row = usize::from(p.row_of[usize::from(byte)]);
                        set(&mut p.rows[row * words..(row + 1) * words], bit);
                    }
                    Element::Any => set(&mut any, bit),
                    Element::Star => {
                        set(&mut p.stay, bit);
                        set(&mut p.stars, bit);
                    }
                    Element::AnyRun => {
                        set(&mut p.stay, bit);
                        set(&mut p.stay_on_slash, bit);
                        set(&mut p.stars, bit);
                    }
                }
            }
            let first_is_star = pattern.first().is_some_and(|e| e.is_star());
            for bit in [Some(base), first_is_star.then_some(base + 1)]
                .into_iter()
                .flatten()
            {
                set(&mut p.start, bit);
                if !rule.anchored {
                    set(&mut p.restart, bit);
                }
            }
            let last = base + pattern.len();
            set(&mut p.accept_dirs, last);
            if !rule.dir_only {
                set(&mut p.accept_files, last);
            }
            p.last_bit.push(last);
            base = last + 1;
        }
        for row in (0..usize::from(row_count)).filter(|&r| r != usize::from(ROW_SLASH)) {
            for (word, a) in p.rows[row * words..(row + 1) * words].iter_mut().zip(&any) {
                *word |= a;
            }
        }
        p
    }

    /// The index of the first rule that matches `path`, if any.
    ///
    /// The live bits after a directory's path do not depend on what follows, and the
    /// target asks about the entries of one directory one after another: the bits after
    /// the last path's directory are kept in `cache`, so an entry costs its name's
    /// length, not its path's.
    pub(super) fn first_match(
        &self,
        path: &[u8],
        is_dir: bool,
        cache: &Mutex<Option<Prefix>>,
    ) -> Option<usize> {
        if self.words == 0 {
            return None;
        }
        // The path up to and including its last `/`.
        let dir_len = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        let mut live = Vec::new();
        let mut from = 0;
        let mut cache = cache.try_lock().ok();
        if let Some(Some(cached)) = cache.as_deref() {
            if cached.path.len() <= dir_len && path.starts_with(&cached.path) {
                live.extend_from_slice(&cached.live);
                from = cached.path.len();
            }
        }
        if live.is_empty() {
            live.extend_from_slice(&self.start);
        }
        self.run(&mut live, &path[from..dir_len]);
        if let Some(cache) = cache.as_deref_mut() {
            if from < dir_len || cache.is_none() {
                *cache = Some(Prefix {
                    path: path[..dir_len].to_vec(),
                    live: live.clone(),
                });
            }
        }
        self.run(&mut live, &path[dir_len..]);
        let accept = if is_dir {
            &self.accept_dirs
        } else {
            &self.accept_files
        };
        let (k, word) = live
            .iter()
            .zip(accept)
            .map(|(l, a)| l & a)
            .enumerate()
            .find(|&(_, word)| word != 0)?;
        let bit = k * 64 + word.trailing_zeros() as usize;
        Some(
            self.last_bit
                .binary_search(&bit)
                .expect("only a rule's last bit accepts"),
        )
    }

    /// Moves the `live` bits over `bytes`, in place.
    fn run(&self, live: &mut [u64], bytes: &[u8]) {
        let w = self.words;
        let mut i = 0;
        while i < bytes.len() {
            let byte = bytes[i];
            let row = usize::from(self.row_of[usize::from(byte)]);
            let moves = &self.rows[row * w..(row + 1) * w];
            let slash = byte == b'/';
            let stay = if slash {
                &self.stay_on_slash
            } else {
                &self.stay
            };
            let (mut moved_carry, mut skipped_carry, mut any_live) = (0u64, 0u64, 0u64);
            for k in 0..w {
                let old = live[k];
                let moved = old & moves[k];
                let mut word = (moved << 1) | moved_carry | (old & stay[k]);
                moved_carry = moved >> 63;
                // A star reached may match nothing: the bit after it is live too.
                let skipped = word & self.stars[k];
                word |= (skipped << 1) | skipped_carry;
                skipped_carry = skipped >> 63;
                if slash {
                    word |= self.restart[k];
                }
                live[k] = word;
                any_live |= word;
            }
            i += 1;
            if any_live == 0 {
                // Nothing can match until a `/` starts the unanchored rules again.
                match bytes[i..].iter().position(|&b| b == b'/') {
                    Some(skip) => i += skip,
                    None => return,
                }
            }
        }
    }
}

/// The live bits after a directory's path (ending in `/`, or empty for the root).
#[derive(Clone, Debug)]
pub(super) struct Prefix {
    path: Vec<u8>,
    live: Vec<u64>,
}

fn set(bits: &mut [u64], bit: usize) {
    bits[bit / 64] |= 1 << (bit % 64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_runs_are_one_element() {
        use Element::*;
        assert_eq!(
            elements(b"a***?*b**"),
            vec![Byte(b'a'), AnyRun, Any, Star, Byte(b'b'), AnyRun]
        );
    }
}

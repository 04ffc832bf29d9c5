//! A strict reader of fast_rsync's delta format: its commands one by one, and a scan
//! that counts what a whole delta contains and bounds a peer's delta before it is
//! applied.
//!
//! Format: `magic u32`, then commands, then `END` and nothing after it. Integers are
//! big-endian.
//!
//! | byte          | command | arguments                                               |
//! |---------------|---------|---------------------------------------------------------|
//! | `0x00`        | END     |                                                         |
//! | `0x01..=0x40` | LITERAL | the byte is the length; that many bytes follow          |
//! | `0x41..=0x44` | LITERAL | length in 1, 2, 4 or 8 bytes; that many bytes follow    |
//! | `0x45..=0x54` | COPY    | basis offset, then length, each in 1, 2, 4 or 8 bytes: |
//! |               |         | `cmd - 0x45 = 4 * log2(offset width) + log2(len width)` |

use crate::error::DeltaError;

pub(crate) const DELTA_MAGIC: u32 = 0x7273_0236;
pub(crate) const END: u8 = 0x00;
pub(crate) const LITERAL_1: u8 = 0x01;
pub(crate) const LITERAL_64: u8 = 0x40;
pub(crate) const LITERAL_N1: u8 = 0x41;
const LITERAL_N8: u8 = 0x44;
pub(crate) const COPY_N1_N1: u8 = 0x45;
const COPY_N8_N8: u8 = 0x54;

/// What one delta contains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// Bytes carried in the delta itself.
    pub literal: u64,
    /// Bytes copied from the basis.
    pub copied: u64,
}

impl std::ops::AddAssign for DeltaStats {
    /// Sums per-segment stats into per-file ones.
    fn add_assign(&mut self, other: Self) {
        self.literal = self.literal.saturating_add(other.literal);
        self.copied = self.copied.saturating_add(other.copied);
    }
}

/// Share of the output that had to be sent literally: `literal / (literal + copied)`,
/// 1.0 for an empty delta. Lets the engine give up on delta search for the rest of a
/// file whose first segments found nothing to copy (search over unrelated data is
/// several times slower than sending it).
pub fn literal_fraction(stats: DeltaStats) -> f64 {
    let total = stats.literal as f64 + stats.copied as f64;
    if total == 0.0 {
        1.0
    } else {
        stats.literal as f64 / total
    }
}

/// The result of a successful scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    pub stats: DeltaStats,
    /// One past the last basis byte any COPY reads (0 without copies).
    pub copy_end: u64,
    /// COPY commands: each is a read of the basis at the target.
    pub copies: u64,
}

/// One command of a delta: bytes carried in it, or a range of the basis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    Literal(&'a [u8]),
    Copy { offset: u64, len: u64 },
}

/// Reads a whole delta without applying it. Refuses: a wrong magic, unknown commands,
/// zero-length LITERALs and COPYs, lengths running past the input, a COPY whose end or
/// the output total overflows `u64`, a missing END, and bytes after END. Allocates
/// nothing; time is linear in the number of commands.
pub(crate) fn scan(delta: &[u8]) -> Result<Scan, DeltaError> {
    let mut commands = Commands::new(delta)?;
    let mut scan = Scan::default();
    let mut total = 0u64;
    while let Some(command) = commands.next_command()? {
        let at = commands.at;
        let added = match command {
            // Cannot overflow: every literal byte is present in `delta`.
            Command::Literal(bytes) => {
                scan.stats.literal += bytes.len() as u64;
                bytes.len() as u64
            }
            Command::Copy { offset, len } => {
                let end = offset.checked_add(len).ok_or_else(|| {
                    DeltaError::delta(format!(
                        "copy at byte {at} ends past 2^64 (offset {offset}, length {len})"
                    ))
                })?;
                scan.copy_end = scan.copy_end.max(end);
                scan.copies += 1;
                scan.stats.copied = scan.stats.copied.saturating_add(len);
                len
            }
        };
        total = total
            .checked_add(added)
            .ok_or_else(|| DeltaError::delta(format!("output size overflows at byte {at}")))?;
    }
    Ok(scan)
}

/// The commands of a delta, in order, each checked for form as it is read. Whether they
/// fit a basis and add up to the promised length takes the whole delta: [`scan`] and
/// [`crate::check_segment`].
pub(crate) struct Commands<'a> {
    r: Reader<'a>,
    len: usize,
    /// Where the command last returned starts, for error messages.
    at: usize,
}

impl<'a> Commands<'a> {
    /// Checks the magic.
    pub(crate) fn new(delta: &'a [u8]) -> Result<Commands<'a>, DeltaError> {
        let mut r = Reader { rest: delta };
        let magic = r.uint(4, "magic")?;
        if magic != u64::from(DELTA_MAGIC) {
            return Err(DeltaError::delta(format!(
                "magic {magic:#010x}, expected {DELTA_MAGIC:#010x}"
            )));
        }
        Ok(Commands {
            r,
            len: delta.len(),
            at: 4,
        })
    }

    /// The next command; `None` at an END with nothing after it.
    pub(crate) fn next_command(&mut self) -> Result<Option<Command<'a>>, DeltaError> {
        let r = &mut self.r;
        let at = self.len - r.rest.len();
        self.at = at;
        let cmd = r.uint(1, "command")? as u8;
        let command = match cmd {
            END if r.rest.is_empty() => return Ok(None),
            END => {
                return Err(DeltaError::delta(format!(
                    "{} bytes after the end command",
                    r.rest.len()
                )))
            }
            LITERAL_1..=LITERAL_64 => {
                Command::Literal(r.take(u64::from(cmd - LITERAL_1 + 1), "literal bytes")?)
            }
            LITERAL_N1..=LITERAL_N8 => {
                let len = r.uint(1 << (cmd - LITERAL_N1), "literal length")?;
                if len == 0 {
                    return Err(DeltaError::delta(format!("empty literal at byte {at}")));
                }
                Command::Literal(r.take(len, "literal bytes")?)
            }
            COPY_N1_N1..=COPY_N8_N8 => {
                let mode = cmd - COPY_N1_N1;
                let offset = r.uint(1 << (mode / 4), "copy offset")?;
                let len = r.uint(1 << (mode % 4), "copy length")?;
                if len == 0 {
                    return Err(DeltaError::delta(format!("empty copy at byte {at}")));
                }
                Command::Copy { offset, len }
            }
            _ => {
                return Err(DeltaError::delta(format!(
                    "unknown command {cmd:#04x} at byte {at}"
                )))
            }
        };
        Ok(Some(command))
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: u64, what: &str) -> Result<&'a [u8], DeltaError> {
        match usize::try_from(len) {
            Ok(n) if n <= self.rest.len() => {
                let (head, rest) = self.rest.split_at(n);
                self.rest = rest;
                Ok(head)
            }
            _ => Err(DeltaError::delta(format!(
                "truncated: {what} needs {len} bytes, {} left",
                self.rest.len()
            ))),
        }
    }

    /// A big-endian unsigned integer of `width` (1..=8) bytes.
    fn uint(&mut self, width: u8, what: &str) -> Result<u64, DeltaError> {
        let bytes = self.take(u64::from(width), what)?;
        Ok(bytes.iter().fold(0, |acc, &b| acc << 8 | u64::from(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(commands: &[&[u8]]) -> Vec<u8> {
        let mut d = DELTA_MAGIC.to_be_bytes().to_vec();
        for c in commands {
            d.extend_from_slice(c);
        }
        d
    }

    fn reason(d: &[u8]) -> String {
        match scan(d) {
            Err(DeltaError::BadDelta { reason }) => reason,
            other => panic!("expected BadDelta, got {other:?}"),
        }
    }

    #[test]
    fn counts_every_encoding() {
        let mut lit300 = vec![LITERAL_N1 + 1, 0x01, 0x2c];
        lit300.extend(std::iter::repeat_n(7, 300));
        let d = delta(&[
            &[LITERAL_1, b'a'],
            &[LITERAL_64],
            &[0; 64],
            &lit300,
            &[COPY_N1_N1, 5, 10],
            // offset in 8 bytes, length in 2
            &[COPY_N1_N1 + 4 * 3 + 1, 0, 0, 0, 0, 0, 0, 1, 0, 0x10, 0],
            &[END],
        ]);
        let s = scan(&d).expect("valid");
        assert_eq!(
            s.stats,
            DeltaStats {
                literal: 1 + 64 + 300,
                copied: 10 + 4096
            }
        );
        assert_eq!(s.copy_end, 256 + 4096);
    }

    #[test]
    fn empty_delta_is_valid() {
        assert_eq!(scan(&delta(&[&[END]])).expect("valid"), Scan::default());
    }

    #[test]
    fn refuses_malformed_deltas() {
        assert!(reason(&[]).contains("magic"));
        assert!(reason(&[0x72, 0x73, 0x02]).contains("magic"));
        assert!(reason(&0x7273_0136u32.to_be_bytes()).contains("magic"));
        assert!(reason(&delta(&[])).contains("command"));
        assert!(reason(&delta(&[&[0x55], &[END]])).contains("unknown"));
        assert!(reason(&delta(&[&[0xff], &[END]])).contains("unknown"));
        assert!(reason(&delta(&[&[END, 0]])).contains("after the end"));
        assert!(reason(&delta(&[&[LITERAL_1 + 4, 1, 2], &[END]])).contains("literal bytes"));
        assert!(reason(&delta(&[&[LITERAL_N1, 0], &[END]])).contains("empty literal"));
        assert!(reason(&delta(&[
            &[LITERAL_N8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[END]
        ]))
        .contains("literal bytes"));
        assert!(reason(&delta(&[&[LITERAL_N8 - 1, 0, 0], &[END]])).contains("literal length"));
        assert!(reason(&delta(&[&[COPY_N1_N1, 1, 0], &[END]])).contains("empty copy"));
        assert!(reason(&delta(&[&[COPY_N1_N1, 1]])).contains("copy length"));
        let huge = [0xff; 8];
        let mut past_end = vec![COPY_N8_N8];
        past_end.extend_from_slice(&huge);
        past_end.extend_from_slice(&1u64.to_be_bytes());
        assert!(reason(&delta(&[&past_end, &[END]])).contains("2^64"));
        let mut half = vec![COPY_N8_N8];
        half.extend_from_slice(&0u64.to_be_bytes());
        half.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert!(reason(&delta(&[&half, &half, &[END]])).contains("overflows"));
    }

    #[test]
    fn literal_fraction_of_edge_cases() {
        assert_eq!(literal_fraction(DeltaStats::default()), 1.0);
        let half = DeltaStats {
            literal: 5,
            copied: 5,
        };
        assert_eq!(literal_fraction(half), 0.5);
        let huge = DeltaStats {
            literal: u64::MAX,
            copied: u64::MAX,
        };
        assert_eq!(literal_fraction(huge), 0.5);
        let mut sum = half;
        sum += huge;
        assert_eq!(sum, huge);
    }
}

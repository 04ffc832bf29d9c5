//! The proxy's answer to CONNECT, read without I/O: bounded, and never a byte past the head.
//!
//! The TLS stream starts right after the blank line that ends the head, so the reader must
//! not buffer past it. [`ReplyHead::room`] says how many bytes the next read may ask for: no
//! more than the shortest way the head could still end, so no read can take a tunnel byte.
//! rsync-ssl's stunnel-mode reader once got this kind of bound off by one; here every byte
//! passes through one loop that checks both limits before it is kept.
//!
//! Lines end in CRLF; a bare LF is accepted too (RFC 9112 §2.2 lets recipients do so).

/// The whole head, status line and blank line included, may not exceed this.
pub(super) const MAX_HEAD: usize = 8 * 1024;
/// Header lines after the status line.
pub(super) const MAX_HEADER_LINES: usize = 64;
/// The reason phrase is kept for messages, this long at most.
const MAX_REASON: usize = 200;
/// The shortest possible head, `HTTP/1.1 200\n\n`.
const MIN_HEAD: usize = 14;
const VERSION_PREFIX: &[u8] = b"HTTP/1.";

/// What the proxy answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Reply {
    pub status: u16,
    /// Printable ASCII only, at most [`MAX_REASON`] characters.
    pub reason: String,
}

/// Why the bytes cannot be a proxy's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Violation {
    /// The first bytes are not `HTTP/1.`; `start` holds what was read.
    NotHttp {
        start: Vec<u8>,
    },
    /// The status line is not `HTTP/1.x NNN [reason]`.
    BadStatusLine {
        line: Vec<u8>,
    },
    TooLong,
    TooManyHeaders,
}

/// The head read so far. Call [`room`](Self::room), read at most that many bytes, hand them
/// to [`push`](Self::push); repeat until `push` gives the reply or a violation.
#[derive(Debug, Default)]
pub(super) struct ReplyHead {
    head: Vec<u8>,
    /// Where the line being read starts in `head`.
    line_start: usize,
    status: Option<Reply>,
    header_lines: usize,
}

impl ReplyHead {
    /// How many bytes the next read may take without reading past the end of the head.
    pub fn room(&self) -> usize {
        if self.status.is_none() {
            return MIN_HEAD.saturating_sub(self.head.len()).max(2);
        }
        let line = &self.head[self.line_start..];
        if line.is_empty() || line == b"\r" {
            // `\n` or `\r\n` may end the head.
            1
        } else {
            // At least `\n\n` to go.
            2
        }
    }

    /// Bytes read so far.
    pub fn len(&self) -> usize {
        self.head.len()
    }

    /// The status line, once it has been read.
    pub fn status(&self) -> Option<&Reply> {
        self.status.as_ref()
    }

    /// Takes the next bytes, at most [`room`](Self::room) of them. `Ok(Some(_))` once the
    /// blank line has been read, which is then the last byte given.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Reply>, Violation> {
        debug_assert!(bytes.len() <= self.room(), "read past the head's room");
        for (i, &byte) in bytes.iter().enumerate() {
            if self.head.len() >= MAX_HEAD {
                return Err(Violation::TooLong);
            }
            self.head.push(byte);
            if self.status.is_none() && !self.starts_like_http() {
                self.head.extend_from_slice(&bytes[i + 1..]);
                return Err(Violation::NotHttp {
                    start: std::mem::take(&mut self.head),
                });
            }
            if byte != b'\n' {
                continue;
            }
            let end = self.head.len() - 1;
            let line = &self.head[self.line_start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if self.status.is_none() {
                self.status = Some(status_line(line)?);
            } else if line.is_empty() {
                debug_assert_eq!(i + 1, bytes.len(), "bytes after the head were read");
                return Ok(self.status.take());
            } else {
                self.header_lines += 1;
                if self.header_lines > MAX_HEADER_LINES {
                    return Err(Violation::TooManyHeaders);
                }
            }
            self.line_start = self.head.len();
        }
        Ok(None)
    }

    fn starts_like_http(&self) -> bool {
        let n = self.head.len().min(VERSION_PREFIX.len());
        self.head[..n] == VERSION_PREFIX[..n]
    }
}

/// `HTTP/1.x NNN [reason]`, the prefix already checked.
fn status_line(line: &[u8]) -> Result<Reply, Violation> {
    let bad = || Violation::BadStatusLine {
        line: line.to_vec(),
    };
    let rest = line.strip_prefix(VERSION_PREFIX).ok_or_else(bad)?;
    let (minor, rest) = rest.split_first().ok_or_else(bad)?;
    let rest = rest.strip_prefix(b" ").filter(|_| minor.is_ascii_digit());
    let rest = rest.ok_or_else(bad)?;
    let (code, reason) = match rest.get(3) {
        None => (rest, &[][..]),
        Some(b' ') => (&rest[..3], &rest[4..]),
        Some(_) => return Err(bad()),
    };
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let status = code
        .iter()
        .fold(0u16, |n, digit| n * 10 + u16::from(digit - b'0'));
    Ok(Reply {
        status,
        reason: printable_bytes(reason, MAX_REASON),
    })
}

/// Printable ASCII only (others become `?`), at most `max` characters.
pub(super) fn printable_bytes(bytes: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take(max)
        .map(|&b| {
            if b == b' ' || b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` the way `connect_tunnel` reads: never more than `room()` at a time.
    fn feed(input: &[u8]) -> (Result<Option<Reply>, Violation>, usize) {
        let mut head = ReplyHead::default();
        let mut at = 0;
        loop {
            let n = head.room().min(input.len() - at);
            if n == 0 {
                return (Ok(None), at);
            }
            match head.push(&input[at..at + n]) {
                Ok(None) => at += n,
                other => return (other, at + n),
            }
        }
    }

    fn reply(status: u16, reason: &str) -> Result<Option<Reply>, Violation> {
        Ok(Some(Reply {
            status,
            reason: reason.to_owned(),
        }))
    }

    #[test]
    fn stops_exactly_after_the_blank_line() {
        let cases: &[(&[u8], u16, &str)] = &[
            (
                b"HTTP/1.1 200 Connection established\r\n\r\n",
                200,
                "Connection established",
            ),
            (b"HTTP/1.0 200 OK\r\nVia: squid\r\nX: y\r\n\r\n", 200, "OK"),
            (b"HTTP/1.1 200\r\n\r\n", 200, ""),
            (b"HTTP/1.1 200\n\n", 200, ""),
            (b"HTTP/1.1 204 \nA: b\r\n\n", 204, ""),
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                407,
                "Proxy Authentication Required",
            ),
            (b"HTTP/1.1 403 \xff\x1b[31mNo\r\n\r\n", 403, "??[31mNo"),
        ];
        for &(head, status, reason) in cases {
            let mut input = head.to_vec();
            input.extend_from_slice(b"\x16\x03\x01TLS");
            let (result, used) = feed(&input);
            assert_eq!(result, reply(status, reason), "{head:?}");
            assert_eq!(used, head.len(), "{head:?}");
        }
    }

    #[test]
    fn the_reason_phrase_is_cut_at_200_characters() {
        let mut input = b"HTTP/1.1 502 ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1000));
        input.extend_from_slice(b"\r\n\r\n");
        let (result, _) = feed(&input);
        assert_eq!(result.unwrap().unwrap().reason.len(), MAX_REASON);
    }

    #[test]
    fn anything_but_an_http_status_line_is_refused() {
        let (result, _) = feed(b"SSH-2.0-OpenSSH_9.6\r\n");
        assert_eq!(
            result,
            Err(Violation::NotHttp {
                start: b"SSH-2.0-OpenSS".to_vec()
            })
        );
        for line in [
            &b"HTTP/1.1 20 OK\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.x 200 OK\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.\r\n\r\n\r\n\r\n",
        ] {
            let (result, _) = feed(line);
            assert!(
                matches!(result, Err(Violation::BadStatusLine { .. })),
                "{line:?}: {result:?}"
            );
        }
        let (result, _) = feed(b"HTTP/2 200\r\n\r\n");
        assert!(
            matches!(result, Err(Violation::NotHttp { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn header_lines_and_size_are_bounded() {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..MAX_HEADER_LINES {
            input.extend_from_slice(b"X: y\r\n");
        }
        let mut ok = input.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(feed(&ok).0, reply(200, "OK"));
        input.extend_from_slice(b"X: y\r\n\r\n");
        assert_eq!(feed(&input).0, Err(Violation::TooManyHeaders));

        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(MAX_HEAD - 2, b'a');
        long.extend_from_slice(b"\r\n");
        assert_eq!(long.len(), MAX_HEAD);
        let (result, used) = feed(&long);
        assert_eq!((result, used), (Ok(None), MAX_HEAD));
        long.extend_from_slice(b"\r\n");
        assert_eq!(feed(&long).0, Err(Violation::TooLong));
    }

    #[test]
    fn room_never_reaches_past_the_shortest_possible_end() {
        let mut head = ReplyHead::default();
        assert_eq!(head.room(), MIN_HEAD);
        assert_eq!(head.push(b"HTTP/1.1 200 "), Ok(None));
        assert_eq!(head.room(), 2);
        assert_eq!(head.push(b"OK"), Ok(None));
        assert_eq!(head.push(b"\r"), Ok(None));
        assert_eq!(head.room(), 2, "\\n\\n still to come");
        assert_eq!(head.push(b"\n"), Ok(None));
        assert_eq!(head.room(), 1, "a bare \\n may end the head");
        assert_eq!(head.push(b"\r"), Ok(None));
        assert_eq!(head.room(), 1);
        assert_eq!(head.push(b"\n"), reply(200, "OK"));
    }
}

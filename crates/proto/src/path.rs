//! Paths are bytes. A [`RelPath`] is a path inside a volume that has been checked once,
//! at the edge, so that nothing downstream has to ask again whether it could escape.

use std::fmt;

use crate::limits::Limits;

/// Why a name or path from the peer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty name")]
    Empty,
    #[error("name {0:?} is '.' or '..'")]
    Dot(String),
    #[error("name {0:?} contains '/' or NUL")]
    BadByte(String),
    #[error("path is absolute: {0:?}")]
    Absolute(String),
    #[error("name is {len} bytes, over the limit of {max}")]
    NameTooLong { len: usize, max: usize },
    #[error("path is {len} bytes, over the limit of {max}")]
    PathTooLong { len: usize, max: usize },
}

/// Checks one path component: not empty, not `.` or `..`, no `/` or NUL, bounded.
pub fn check_name(name: &[u8], limits: &Limits) -> Result<(), PathError> {
    if name.is_empty() {
        return Err(PathError::Empty);
    }
    if name == b"." || name == b".." {
        return Err(PathError::Dot(escape(name)));
    }
    if name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(PathError::BadByte(escape(name)));
    }
    if name.len() > limits.max_name {
        return Err(PathError::NameTooLong {
            len: name.len(),
            max: limits.max_name,
        });
    }
    Ok(())
}

/// A relative path inside a volume: components joined by `/`, each passing
/// [`check_name`]. The empty path is the volume root.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(Vec<u8>);

impl RelPath {
    /// The volume root.
    pub fn root() -> RelPath {
        RelPath(Vec::new())
    }

    /// Validates `bytes` as a relative path.
    pub fn new(bytes: Vec<u8>, limits: &Limits) -> Result<RelPath, PathError> {
        if bytes.len() > limits.max_path {
            return Err(PathError::PathTooLong {
                len: bytes.len(),
                max: limits.max_path,
            });
        }
        if bytes.first() == Some(&b'/') {
            return Err(PathError::Absolute(escape(&bytes)));
        }
        if !bytes.is_empty() {
            for component in bytes.split(|&b| b == b'/') {
                check_name(component, limits)?;
            }
        }
        Ok(RelPath(bytes))
    }

    /// `self/name`, with `name` checked as a component.
    pub fn join(&self, name: &[u8], limits: &Limits) -> Result<RelPath, PathError> {
        check_name(name, limits)?;
        let mut bytes = Vec::with_capacity(self.0.len() + 1 + name.len());
        bytes.extend_from_slice(&self.0);
        if !bytes.is_empty() {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(name);
        if bytes.len() > limits.max_path {
            return Err(PathError::PathTooLong {
                len: bytes.len(),
                max: limits.max_path,
            });
        }
        Ok(RelPath(bytes))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The components, root first. Empty for the root.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// Splits into the parent directory and the last component; `None` for the root.
    pub fn split_last(&self) -> Option<(RelPath, &[u8])> {
        if self.0.is_empty() {
            return None;
        }
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => Some((RelPath(self.0[..i].to_vec()), &self.0[i + 1..])),
            None => Some((RelPath::root(), &self.0[..])),
        }
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", escape(&self.0))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&escape(&self.0))
        }
    }
}

/// Shows bytes to a person: valid UTF-8 stays, and whatever could change how the terminal
/// or a log shows the text around it is escaped, so a file name (or a peer's message, see
/// [`peer_text`]) can never move the cursor, rewrite a line or forge one:
///
/// * control characters (C0 with `\r`, `\n` and ESC; DEL; C1 as U+0080-U+009F) become
///   `\xNN` escapes of their UTF-8 bytes;
/// * invalid UTF-8 bytes (raw C1 bytes 0x80-0x9f among them) become `\xNN`;
/// * Unicode bidi controls (the embeddings and overrides U+202A-U+202E, the isolates
///   U+2066-U+2069, the marks U+200E, U+200F and U+061C) become `\u{NNNN}`, so text
///   cannot be shown in an order other than its bytes';
/// * `\` becomes `\\`, so every escape reads back unambiguously.
///
/// Everything else, printable ASCII included, is shown as it is.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() {
                for b in c.to_string().bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else if is_bidi_control(c) {
                out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Text a peer sent (an `Error`, a refusal, a per-file error), ready to be shown to a
/// person, written to a log or put in a JSON event: escaped as [`escape`] escapes paths.
/// Every place that shows a peer's words goes through here, and names the peer beside
/// them (`target says: ...`), so nothing the peer writes reads as Ferry's own line.
pub fn peer_text(text: &str) -> String {
    escape(text.as_bytes())
}

/// The Unicode characters that reorder the text displayed around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escapes() {
        let l = Limits::default();
        assert!(RelPath::new(b"/etc".to_vec(), &l).is_err());
        assert!(RelPath::new(b"a/../b".to_vec(), &l).is_err());
        assert!(RelPath::new(b"a//b".to_vec(), &l).is_err());
        assert!(RelPath::new(b"a/./b".to_vec(), &l).is_err());
        assert!(RelPath::new(b"a\0b".to_vec(), &l).is_err());
        assert!(RelPath::new(b"a/b/".to_vec(), &l).is_err());
        assert!(RelPath::new(b"a/\xff\n/c".to_vec(), &l).is_ok());
        assert!(RelPath::root().join(b"..", &l).is_err());
        assert!(RelPath::root().join(b"x/y", &l).is_err());
    }

    #[test]
    fn splits_and_joins() {
        let l = Limits::default();
        let p = RelPath::root()
            .join(b"a", &l)
            .unwrap()
            .join(b"b", &l)
            .unwrap();
        assert_eq!(p.as_bytes(), b"a/b");
        let (parent, name) = p.split_last().unwrap();
        assert_eq!(parent.as_bytes(), b"a");
        assert_eq!(name, b"b");
        assert_eq!(p.components().count(), 2);
        assert!(RelPath::root().split_last().is_none());
    }

    #[test]
    fn escape_shows_control_and_invalid_bytes() {
        assert_eq!(escape(b"a\nb\xffc"), "a\\x0ab\\xffc");
        assert_eq!(escape("é".as_bytes()), "é");
    }

    #[test]
    fn peer_text_escapes_what_could_rewrite_a_terminal_line() {
        let cases: &[(&str, &str)] = &[
            (
                "\x1b[2K\rdone in 0.1 s, exit code 0",
                "\\x1b[2K\\x0ddone in 0.1 s, exit code 0",
            ),
            ("a\nb", "a\\x0ab"),
            ("del\x7f", "del\\x7f"),
            ("c1\u{9b}31m", "c1\\xc2\\x9b31m"),
            ("\u{85}", "\\xc2\\x85"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
            ("back\\slash", "back\\\\slash"),
            ("tab\there", "tab\\x09here"),
            ("ünïcödé ok", "ünïcödé ok"),
        ];
        for (raw, shown) in cases {
            assert_eq!(peer_text(raw), *shown, "{raw:?}");
        }
        // Raw C1 bytes that are not UTF-8 (0x9b is a one-byte CSI on some terminals).
        assert_eq!(escape(b"\x9b2J\x85"), "\\x9b2J\\x85");
    }

    /// What a terminal or log could act on: controls, and the bidi reorderings.
    fn is_active(c: char) -> bool {
        c.is_control() || is_bidi_control(c)
    }

    proptest::proptest! {
        #[test]
        fn escaped_bytes_hold_no_control_or_bidi_character(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let shown = escape(&bytes);
            proptest::prop_assert!(!shown.chars().any(is_active), "{shown:?}");
        }

        #[test]
        fn escaped_text_holds_no_control_or_bidi_character(text in "(\\PC|[\u{1}-\u{a0}\u{61c}\u{200e}\u{200f}\u{202a}-\u{202e}\u{2066}-\u{2069}])*") {
            let shown = peer_text(&text);
            proptest::prop_assert!(!shown.chars().any(is_active), "{shown:?}");
        }

        #[test]
        fn printable_ascii_reads_as_it_was(text in "[ -\\[\\]-~]*") {
            proptest::prop_assert_eq!(peer_text(&text), text);
        }
    }
}

//! Include/exclude rules with rsync's pattern semantics, as plain data both sides share:
//! the source skips what is excluded, the target keeps excluded entries safe from
//! `--delete` (unless `--delete-excluded`).
//!
//! * `*` matches any run of bytes except `/`; `**` matches anything, `/` included; `?`
//!   matches one byte except `/`.
//! * A pattern starting with `/` is anchored at the root of the transfer.
//! * A trailing `/` makes the rule match directories only.
//! * A pattern with a `/` inside (or `**`) is matched against the path's trailing
//!   components (the whole path if anchored); otherwise against the name alone.
//! * Rules are tried in order; the first that matches decides. No match: included.

/// Whether a rule keeps or drops what it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    Include,
    Exclude,
}

/// One rule, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub kind: RuleKind,
    /// The pattern as given (the wire carries it like this).
    pub pattern: Vec<u8>,
    body: Vec<u8>,
    anchored: bool,
    dir_only: bool,
    whole_path: bool,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("empty pattern")]
    Empty,
    #[error("pattern {0:?} contains a NUL byte")]
    Nul(String),
    #[error("pattern is {len} bytes, over the limit of {max}")]
    TooLong { len: usize, max: usize },
}

/// Longest pattern accepted.
pub const MAX_PATTERN: usize = 4096;
/// Most rules in one filter.
pub const MAX_RULES: usize = 1024;

impl Rule {
    pub fn new(kind: RuleKind, pattern: &[u8]) -> Result<Rule, FilterError> {
        if pattern.is_empty() || pattern == b"/" {
            return Err(FilterError::Empty);
        }
        if pattern.contains(&0) {
            return Err(FilterError::Nul(crate::escape(pattern)));
        }
        if pattern.len() > MAX_PATTERN {
            return Err(FilterError::TooLong {
                len: pattern.len(),
                max: MAX_PATTERN,
            });
        }
        let anchored = pattern.starts_with(b"/");
        let dir_only = pattern.ends_with(b"/");
        let body = &pattern[usize::from(anchored)..pattern.len() - usize::from(dir_only)];
        let whole_path = anchored || body.contains(&b'/') || contains(body, b"**");
        Ok(Rule {
            kind,
            pattern: pattern.to_vec(),
            body: body.to_vec(),
            anchored,
            dir_only,
            whole_path,
        })
    }

    /// Whether the rule matches `path` (relative to the root, no leading `/`).
    pub fn matches(&self, path: &[u8], is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        if self.anchored {
            return glob(&self.body, path);
        }
        if !self.whole_path {
            let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
            return glob(&self.body, name);
        }
        // Unanchored with a '/': the pattern may match the path's trailing components.
        if glob(&self.body, path) {
            return true;
        }
        path.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'/')
            .any(|(i, _)| glob(&self.body, &path[i + 1..]))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Matches `text` against a glob of `*`, `**` and `?` (iterative, with backtracking to
/// the last star, so hostile patterns stay polynomial).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The last star seen: (pattern index after it, text index it resumes at, crosses '/').
    let mut star: Option<(usize, usize, bool)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            let double = pattern.get(p + 1) == Some(&b'*');
            p += if double { 2 } else { 1 };
            star = Some((p, t, double));
            continue;
        }
        if p < pattern.len() && (pattern[p] == text[t] || (pattern[p] == b'?' && text[t] != b'/')) {
            p += 1;
            t += 1;
            continue;
        }
        match star {
            Some((sp, st, double)) if double || text[st] != b'/' => {
                star = Some((sp, st + 1, double));
                p = sp;
                t = st + 1;
            }
            _ => return false,
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// An ordered list of rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    rules: Vec<Rule>,
}

impl Filter {
    pub fn new(rules: Vec<Rule>) -> Filter {
        Filter { rules }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `path` is excluded: the first matching rule decides; no match includes.
    pub fn excluded(&self, path: &[u8], is_dir: bool) -> bool {
        self.rules
            .iter()
            .find(|r| r.matches(path, is_dir))
            .is_some_and(|r| r.kind == RuleKind::Exclude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &str) -> Rule {
        Rule::new(RuleKind::Exclude, p.as_bytes()).unwrap()
    }

    fn inc(p: &str) -> Rule {
        Rule::new(RuleKind::Include, p.as_bytes()).unwrap()
    }

    #[test]
    fn patterns_match_like_rsync() {
        // (pattern, path, is_dir, matches)
        let table: &[(&str, &str, bool, bool)] = &[
            ("*.log", "a.log", false, true),
            ("*.log", "x/y/a.log", false, true),
            ("*.log", "a.log/b", false, false),
            ("cache", "cache", true, true),
            ("cache", "a/cache", true, true),
            ("cache", "a/cache/x", false, false),
            ("/cache", "cache", true, true),
            ("/cache", "a/cache", true, false),
            ("cache/", "cache", false, false),
            ("cache/", "cache", true, true),
            ("/lost+found", "lost+found", true, true),
            ("/lost+found", "a/lost+found", true, false),
            ("a/b", "a/b", false, true),
            ("a/b", "x/a/b", false, true),
            ("a/b", "xa/b", false, false),
            ("/a/*", "a/b", false, true),
            ("/a/*", "a/b/c", false, false),
            ("/a/**", "a/b/c", false, true),
            ("**/tmp", "tmp", true, false),
            ("**/tmp", "x/y/tmp", true, true),
            ("?.txt", "a.txt", false, true),
            ("?.txt", "ab.txt", false, false),
            ("d*/f", "dir/f", false, true),
            ("d*/f", "d/x/f", false, false),
            ("*", "anything", false, true),
            ("*", "a/b", false, true),
        ];
        for &(pattern, path, is_dir, want) in table {
            assert_eq!(
                ex(pattern).matches(path.as_bytes(), is_dir),
                want,
                "{pattern} vs {path} (dir {is_dir})"
            );
        }
    }

    #[test]
    fn first_match_wins() {
        let f = Filter::new(vec![inc("keep.log"), ex("*.log")]);
        assert!(!f.excluded(b"keep.log", false));
        assert!(f.excluded(b"other.log", false));
        assert!(!f.excluded(b"other.txt", false));
        let f = Filter::new(vec![ex("*.log"), inc("keep.log")]);
        assert!(f.excluded(b"keep.log", false));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Rule::new(RuleKind::Exclude, b"").is_err());
        assert!(Rule::new(RuleKind::Exclude, b"/").is_err());
        assert!(Rule::new(RuleKind::Exclude, b"a\0b").is_err());
        assert!(Rule::new(RuleKind::Exclude, &vec![b'a'; MAX_PATTERN + 1]).is_err());
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        // Exponential backtracking would not finish; these must (the test just returns).
        assert!(!ex(&"*a".repeat(30)).matches(&[b'b'; 4000], false));
        assert!(!ex(&"**a".repeat(30)).matches(&[b'b'; 4000], false));
    }
}

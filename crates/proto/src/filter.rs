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
//!
//! A peer sends the filter in its `Hello`, and the target evaluates it for every listed
//! entry and every extra before `--delete`, so its cost is bounded: at most [`MAX_RULES`]
//! rules, [`MAX_PATTERN`] bytes each and [`MAX_FILTER_BYTES`] in all, compiled into one
//! matcher (`matcher.rs`) whose cost per path is linear in the path's length times the
//! filter's size, whatever the patterns.

mod matcher;

use std::sync::{Arc, Mutex};

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
    #[error("{count} filter rules, over the limit of {max}")]
    TooManyRules { count: usize, max: usize },
    #[error("the filter's patterns total {len} bytes, over the limit of {max}")]
    TooLarge { len: usize, max: usize },
}

/// Longest pattern accepted: a whole path (Linux `PATH_MAX`).
pub const MAX_PATTERN: usize = 4096;
/// Most rules in one filter.
pub const MAX_RULES: usize = 1024;
/// Most pattern bytes in one filter, all rules together. rsync filters of a few hundred
/// rules stay far below; it bounds what one path costs the target to match (about
/// `path length x (MAX_FILTER_BYTES + MAX_RULES) / 64` word operations).
pub const MAX_FILTER_BYTES: usize = 64 * 1024;

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

    /// Whether the rule matches `path` (relative to the root, no leading `/`). Compiles
    /// the rule on each call: [`Filter::excluded`] is the way to test many paths.
    pub fn matches(&self, path: &[u8], is_dir: bool) -> bool {
        matcher::Program::compile(std::slice::from_ref(self))
            .first_match(path, is_dir, &Mutex::new(None))
            .is_some()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An ordered list of rules, compiled for matching.
#[derive(Default)]
pub struct Filter {
    rules: Vec<Rule>,
    program: Arc<matcher::Program>,
    /// Where matching the last path's directory left the program.
    cache: Box<Mutex<Option<matcher::Prefix>>>,
}

impl Filter {
    /// The filter of `rules`, without the size limits: for rules the caller made itself.
    /// Rules from a peer or a user go through [`Filter::checked`].
    pub fn new(rules: Vec<Rule>) -> Filter {
        let program = Arc::new(matcher::Program::compile(&rules));
        Filter {
            rules,
            program,
            cache: Box::default(),
        }
    }

    /// The filter of `rules` if it is within [`MAX_RULES`] and [`MAX_FILTER_BYTES`] (each
    /// rule is already within [`MAX_PATTERN`]).
    pub fn checked(rules: Vec<Rule>) -> Result<Filter, FilterError> {
        check_count(rules.len())?;
        check_total(rules.iter().map(|r| r.pattern.len()).sum())?;
        Ok(Filter::new(rules))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `path` is excluded: the first matching rule decides; no match includes.
    pub fn excluded(&self, path: &[u8], is_dir: bool) -> bool {
        self.program
            .first_match(path, is_dir, &self.cache)
            .is_some_and(|i| self.rules[i].kind == RuleKind::Exclude)
    }
}

/// Refuses more than [`MAX_RULES`] rules.
pub fn check_count(count: usize) -> Result<(), FilterError> {
    if count > MAX_RULES {
        return Err(FilterError::TooManyRules {
            count,
            max: MAX_RULES,
        });
    }
    Ok(())
}

/// Refuses patterns of more than [`MAX_FILTER_BYTES`] in all.
pub fn check_total(len: usize) -> Result<(), FilterError> {
    if len > MAX_FILTER_BYTES {
        return Err(FilterError::TooLarge {
            len,
            max: MAX_FILTER_BYTES,
        });
    }
    Ok(())
}

impl Clone for Filter {
    fn clone(&self) -> Filter {
        Filter {
            rules: self.rules.clone(),
            program: self.program.clone(),
            cache: Box::default(),
        }
    }
}

// The compiled program and the cache follow from the rules.
impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.rules == other.rules
    }
}

impl Eq for Filter {}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("rules", &self.rules)
            .finish()
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

//! Checks on `ferry_proto::filter`, shared by the fuzz target `filter`, by
//! `crates/proto/tests/fuzz_corpus.rs` (corpus replay) and by
//! `crates/proto/tests/filter_reference.rs` (property tests), which include this file with
//! `#[path]`, so it may use only `ferry_proto` and std.
//!
//! [`reference_matches`] is the filter's documented semantics written the plainest way (a
//! table over pattern and text positions, tried at every trailing component): slow, but
//! obviously right. The compiled matcher must agree with it on every rule and path.
//!
//! Every check panics on a violation; a panic is what libFuzzer reports as a crash.

use ferry_proto::filter::{check_total, FilterError, MAX_FILTER_BYTES, MAX_PATTERN, MAX_RULES};
use ferry_proto::{Filter, Rule, RuleKind};

/// Above this many table cells (pattern x path x components, summed over the rules) the
/// input is only checked for panics and refusals, not against the reference: the
/// reference is quadratic and a fuzz input must stay fast.
const REFERENCE_BUDGET: usize = 200_000;

/// `data[0]`: bit 0 says whether the path is a directory, bits 1-7 the kinds of the first
/// seven rules (set: include; later rules alternate). The rest splits at NUL bytes (which
/// no pattern or path holds): every field but the last is a pattern, the last the path.
pub fn filter(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let is_dir = control & 1 != 0;
    let mut fields: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    let path = fields.pop().unwrap_or_default();
    let mut rules = Vec::new();
    for (i, pattern) in fields.into_iter().enumerate() {
        let include = if i < 7 {
            control >> (i + 1) & 1 != 0
        } else {
            i % 2 == 0
        };
        let kind = if include {
            RuleKind::Include
        } else {
            RuleKind::Exclude
        };
        match Rule::new(kind, pattern) {
            Ok(rule) => {
                assert!(!pattern.is_empty() && pattern != b"/" && pattern.len() <= MAX_PATTERN);
                assert_eq!(rule.pattern, pattern, "a rule keeps its pattern as given");
                rules.push(rule);
            }
            Err(error) => {
                let _ = error.to_string();
                assert!(
                    pattern.is_empty() || pattern == b"/" || pattern.len() > MAX_PATTERN,
                    "{pattern:?} refused: {error}"
                );
            }
        }
    }
    check_filter(&rules, path, is_dir);
}

/// `Filter::checked` applies the limits, and the compiled filter and each rule agree with
/// the reference on `path`.
pub fn check_filter(rules: &[Rule], path: &[u8], is_dir: bool) {
    let total: usize = rules.iter().map(|r| r.pattern.len()).sum();
    match Filter::checked(rules.to_vec()) {
        Ok(_) => assert!(rules.len() <= MAX_RULES && total <= MAX_FILTER_BYTES),
        Err(FilterError::TooManyRules { count, max }) => {
            assert!(count == rules.len() && count > max)
        }
        Err(FilterError::TooLarge { len, .. }) => {
            assert!(len == total && check_total(total).is_err())
        }
        Err(other) => panic!("unexpected refusal of a filter: {other}"),
    }
    let filter = Filter::new(rules.to_vec());
    let components = path.iter().filter(|&&b| b == b'/').count() + 1;
    let cells: usize = rules
        .iter()
        .map(|r| (r.pattern.len() + 2) * (path.len() + 1) * components)
        .sum();
    // The target asks about a directory, then its entries, then the next directory; the
    // filter keeps where the last directory's path left it. Ask in that order and out of
    // it: each ancestor, the path twice, the first ancestor again.
    let ancestors: Vec<&[u8]> = (0..path.len())
        .filter(|&i| path[i] == b'/')
        .map(|i| &path[..i])
        .collect();
    let mut queries: Vec<(&[u8], bool)> = ancestors.iter().map(|&a| (a, true)).collect();
    queries.extend([(path, is_dir), (path, is_dir)]);
    queries.extend(ancestors.first().map(|&a| (a, true)));
    let answers: Vec<bool> = queries
        .iter()
        .map(|&(p, dir)| filter.excluded(p, dir))
        .collect();
    if cells * 2 > REFERENCE_BUDGET {
        return;
    }
    for (&(query, dir), &excluded) in queries.iter().zip(&answers) {
        let first = rules
            .iter()
            .position(|r| reference_matches(&r.pattern, query, dir));
        let want = first.is_some_and(|i| rules[i].kind == RuleKind::Exclude);
        assert_eq!(
            excluded,
            want,
            "filter {:?} on {:?} (dir {dir}): excluded {excluded}, the reference says {want}",
            rules
                .iter()
                .map(|r| String::from_utf8_lossy(&r.pattern))
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(query),
        );
    }
    for rule in rules.iter().take(8) {
        assert_eq!(
            rule.matches(path, is_dir),
            reference_matches(&rule.pattern, path, is_dir),
            "rule {:?} on {:?} (dir {is_dir})",
            String::from_utf8_lossy(&rule.pattern),
            String::from_utf8_lossy(path),
        );
    }
}

/// Whether the rule `pattern` matches `path`, straight from the rules in
/// `crates/proto/src/filter.rs`'s module docs.
pub fn reference_matches(pattern: &[u8], path: &[u8], is_dir: bool) -> bool {
    let anchored = pattern.starts_with(b"/");
    let dir_only = pattern.ends_with(b"/");
    if dir_only && !is_dir {
        return false;
    }
    let body = &pattern[usize::from(anchored)..pattern.len() - usize::from(dir_only)];
    let whole_path = anchored || body.contains(&b'/') || body.windows(2).any(|w| w == b"**");
    if anchored {
        return reference_glob(body, path);
    }
    if !whole_path {
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        return reference_glob(body, name);
    }
    reference_glob(body, path)
        || (0..path.len())
            .filter(|&i| path[i] == b'/')
            .any(|i| reference_glob(body, &path[i + 1..]))
}

/// `pattern` matches all of `text`: `**` any bytes, `*` any bytes but `/`, `?` one byte
/// but `/`, anything else itself. `matches[i][j]`: `pattern[i..]` matches `text[j..]`.
pub fn reference_glob(pattern: &[u8], text: &[u8]) -> bool {
    let (p, t) = (pattern.len(), text.len());
    let mut matches = vec![vec![false; t + 1]; p + 1];
    matches[p][t] = true;
    for i in (0..p).rev() {
        for j in (0..=t).rev() {
            let next = text.get(j).copied();
            let not_slash = next.is_some_and(|b| b != b'/');
            matches[i][j] = match pattern[i] {
                b'*' if pattern.get(i + 1) == Some(&b'*') => {
                    // `**`: nothing, or one more byte of anything.
                    matches[i + 2][j] || (next.is_some() && matches[i][j + 1])
                }
                b'*' => matches[i + 1][j] || (not_slash && matches[i][j + 1]),
                b'?' => not_slash && matches[i + 1][j + 1],
                byte => next == Some(byte) && matches[i + 1][j + 1],
            };
        }
    }
    matches[0][0]
}

//! The compiled filter matcher agrees with the reference matcher of
//! `fuzz/src/filter_checks.rs` (the documented semantics, written as a plain table) on
//! random rules and paths, and refuses filters over the limits.

#[allow(dead_code)]
#[path = "../../../fuzz/src/filter_checks.rs"]
mod checks;

use ferry_proto::filter::{FilterError, MAX_FILTER_BYTES, MAX_PATTERN, MAX_RULES};
use ferry_proto::{Filter, Rule, RuleKind};
use proptest::prelude::*;

/// Bytes from a small alphabet, so stars, slashes and literals meet often.
fn text(alphabet: &'static [u8], len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(alphabet), len)
}

fn rule() -> impl Strategy<Value = Rule> {
    (any::<bool>(), text(b"ab/*?", 1..12)).prop_filter_map("empty pattern", |(include, p)| {
        let kind = if include {
            RuleKind::Include
        } else {
            RuleKind::Exclude
        };
        Rule::new(kind, &p).ok()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn compiled_filter_agrees_with_the_reference(
        rules in proptest::collection::vec(rule(), 1..6),
        path in text(b"ab/", 0..16),
        is_dir in any::<bool>(),
    ) {
        checks::check_filter(&rules, &path, is_dir);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Long rules spanning several 64-bit words, so carries between words are exercised.
    #[test]
    fn long_rules_agree_with_the_reference(
        rules in proptest::collection::vec(
            text(b"ab/*?", 40..100).prop_filter_map("empty", |p| Rule::new(RuleKind::Exclude, &p).ok()),
            1..4,
        ),
        path in text(b"ab/", 0..100),
        is_dir in any::<bool>(),
    ) {
        checks::check_filter(&rules, &path, is_dir);
    }
}

#[test]
fn stars_of_both_kinds_in_one_pattern_match_like_the_reference() {
    // `**` takes "x/a/", then `a`, `*` nothing, `b`. Backtracking only to the last star
    // (the matcher before the compiled one) missed it: once `*` met a `/`, it gave up.
    assert!(checks::reference_matches(b"/**a*b", b"x/a/ab", false));
    let rule = Rule::new(RuleKind::Exclude, b"/**a*b").unwrap();
    assert!(rule.matches(b"x/a/ab", false));
}

#[test]
fn filters_over_the_limits_are_refused() {
    let rule = |len: usize| Rule::new(RuleKind::Exclude, &vec![b'a'; len]).unwrap();
    assert!(Filter::checked(vec![rule(1); MAX_RULES]).is_ok());
    assert_eq!(
        Filter::checked(vec![rule(1); MAX_RULES + 1]),
        Err(FilterError::TooManyRules {
            count: MAX_RULES + 1,
            max: MAX_RULES
        })
    );
    let full = MAX_FILTER_BYTES / MAX_PATTERN;
    assert!(Filter::checked(vec![rule(MAX_PATTERN); full]).is_ok());
    let mut over = vec![rule(MAX_PATTERN); full];
    over.push(rule(1));
    assert_eq!(
        Filter::checked(over),
        Err(FilterError::TooLarge {
            len: MAX_FILTER_BYTES + 1,
            max: MAX_FILTER_BYTES
        })
    );
}

/// A peer's `Hello` whose patterns total more than the limit is refused at decode, naming
/// the limit; one at the limit decodes.
#[test]
fn a_hello_over_the_filter_budget_is_refused_at_decode() {
    let hello = |rules: Vec<Rule>| ferry_proto::Message::Hello {
        version: 1,
        volume: b"v".to_vec(),
        options: Default::default(),
        filter: Filter::new(rules),
    };
    let limits = ferry_proto::Limits::default();
    let rule = Rule::new(RuleKind::Exclude, &[b'*'; MAX_PATTERN]).unwrap();
    let full = MAX_FILTER_BYTES / MAX_PATTERN;
    let mut buf = bytes::BytesMut::new();
    ferry_proto::encode(&hello(vec![rule.clone(); full]), &mut buf);
    assert!(matches!(
        ferry_proto::decode(&mut buf, &limits),
        Ok(Some(_))
    ));

    let mut buf = bytes::BytesMut::new();
    ferry_proto::encode(&hello(vec![rule; full + 1]), &mut buf);
    let error = ferry_proto::decode(&mut buf, &limits).unwrap_err();
    assert!(
        matches!(
            error,
            ferry_proto::CodecError::OverLimit { field: "filter.total_bytes", max, .. }
                if max == MAX_FILTER_BYTES as u64
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("over the limit of 65536"),
        "{error}"
    );
}

//! Filters: what a peer's include/exclude rules cost the target per listed entry. The
//! target matches every listed entry and every extra before `--delete` against them.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use ferry_proto::filter::{MAX_FILTER_BYTES, MAX_RULES};
use ferry_proto::{Filter, Rule, RuleKind};

/// The costliest filter the limits allow: as many rules as allowed, the pattern bytes
/// shared out among them, each starting with `**` (so it is live at every byte) and
/// ending in a byte no name holds (so nothing is excluded and every rule is tried).
pub fn worst_filter() -> Filter {
    let len = MAX_FILTER_BYTES / MAX_RULES;
    let mut pattern = b"**".to_vec();
    while pattern.len() < len - 1 {
        pattern.extend_from_slice(b"a*");
    }
    pattern.truncate(len - 1);
    pattern.push(b'Z');
    let rule = Rule::new(RuleKind::Exclude, &pattern).expect("a valid pattern");
    Filter::checked(vec![rule; MAX_RULES]).expect("within the limits")
}

/// A filter as rsync users write them: a few hundred short rules of every kind.
fn usual_filter() -> Filter {
    let mut rules = Vec::new();
    for i in 0..300 {
        let pattern = match i % 6 {
            0 => format!("*.tmp{i}"),
            1 => format!("/build{i}/"),
            2 => format!("cache{i}/**"),
            3 => format!("logs/{i}/*.log"),
            4 => format!("**/node_modules{i}"),
            _ => format!("?ile{i}.bak"),
        };
        rules.push(Rule::new(RuleKind::Exclude, pattern.as_bytes()).expect("valid"));
    }
    Filter::checked(rules).expect("within the limits")
}

/// 400 entries of 255-byte names: at the root, and in a directory 15 levels of
/// 255-byte names deep (paths of 4095 bytes, the longest allowed).
fn listings() -> [(&'static str, Vec<Vec<u8>>); 2] {
    let name = |i: usize| {
        let mut name = format!("{i:03}-").into_bytes();
        name.resize(255, b'a');
        name
    };
    let mut deep = Vec::new();
    for level in 0..15 {
        deep.extend_from_slice(&name(900 + level));
        deep.push(b'/');
    }
    let root = (0..400).map(name).collect();
    let nested = (0..400)
        .map(|i| [deep.as_slice(), &name(i)].concat())
        .collect();
    [("root", root), ("depth 15", nested)]
}

fn filters(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter/400 entries");
    group.throughput(Throughput::Elements(400));
    for (filter_name, filter) in [("worst", worst_filter()), ("usual", usual_filter())] {
        for (where_, paths) in listings() {
            group.bench_with_input(BenchmarkId::new(filter_name, where_), &paths, |b, paths| {
                b.iter(|| {
                    let excluded = paths.iter().filter(|p| filter.excluded(p, false)).count();
                    assert_eq!(excluded, 0, "no entry matches these rules");
                });
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = crate::config().sample_size(10);
    targets = filters
}

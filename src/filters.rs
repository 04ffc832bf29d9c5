//! `--include`, `--exclude` and `--exclude-from` in the order given on the command line
//! (the first matching rule wins, as in rsync), plus the default rule for `lost+found`.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use ferry_proto::{Filter, Rule, RuleKind};

use crate::args::{Cli, TransferArgs};

/// The rule every ext4 volume needs: its root `lost+found` (owned by root, made by
/// mkfs) is not the application's data, so it is neither copied nor deleted.
const LOST_FOUND: &str = "/lost+found/";

/// The rules of a transfer given no filter flags: `lost+found` at the root left out.
pub fn default_filter() -> Filter {
    Filter::new(vec![
        Rule::new(RuleKind::Exclude, LOST_FOUND.as_bytes()).expect("valid rule")
    ])
}

/// `command` is the subcommand (`push` or `pull`) whose flags these are.
pub fn build(args: &TransferArgs, command: &str) -> Result<Filter> {
    let mut ordered: Vec<(usize, RuleKind, String)> = Vec::new();
    let positions = command_line_positions(command);
    let at = |id: &str, i: usize| {
        positions
            .iter()
            .find(|(name, _)| name == id)
            .and_then(|(_, places)| places.get(i).copied())
            .unwrap_or(usize::MAX)
    };
    for (i, p) in args.include.iter().enumerate() {
        ordered.push((at("include", i), RuleKind::Include, p.clone()));
    }
    for (i, p) in args.exclude.iter().enumerate() {
        ordered.push((at("exclude", i), RuleKind::Exclude, p.clone()));
    }
    let mut from_files = Vec::new();
    for (i, file) in args.exclude_from.iter().enumerate() {
        for (kind, pattern) in read_rules(file)? {
            from_files.push((at("exclude_from", i), kind, pattern));
        }
    }
    ordered.extend(from_files);
    ordered.sort_by_key(|(position, _, _)| *position);

    let mut rules = Vec::with_capacity(ordered.len() + 1);
    if !args.include_lost_found {
        rules.push(Rule::new(RuleKind::Exclude, LOST_FOUND.as_bytes()).expect("valid rule"));
    }
    for (_, kind, pattern) in ordered {
        let rule = Rule::new(kind, pattern.as_bytes())
            .with_context(|| format!("filter pattern {pattern:?} is not usable"))?;
        rules.push(rule);
    }
    // The peer refuses a filter over its limits: say so before connecting.
    Filter::checked(rules).map_err(|e| {
        anyhow::anyhow!(
            "{e}: use fewer --include/--exclude/--exclude-from rules \
             (at most {} rules, {} bytes of patterns in all)",
            ferry_proto::filter::MAX_RULES,
            ferry_proto::filter::MAX_FILTER_BYTES
        )
    })
}

/// Where each occurrence of the filter flags stood on the command line.
fn command_line_positions(command: &str) -> Vec<(String, Vec<usize>)> {
    let Ok(matches) = Cli::command().try_get_matches_from(std::env::args_os()) else {
        return Vec::new();
    };
    let Some(push) = matches.subcommand_matches(command) else {
        return Vec::new();
    };
    ["include", "exclude", "exclude_from"]
        .into_iter()
        .map(|id| {
            let places = push.indices_of(id).map(|i| i.collect()).unwrap_or_default();
            (id.to_string(), places)
        })
        .collect()
}

/// An exclude file: one pattern per line; `+ PATTERN` includes, `- PATTERN` excludes,
/// blank lines and lines starting with `#` or `;` are comments.
fn read_rules(file: &Path) -> Result<Vec<(RuleKind, String)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read --exclude-from {}", file.display()))?;
    Ok(text
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#') && !line.starts_with(';'))
        .map(
            |line| match (line.strip_prefix("+ "), line.strip_prefix("- ")) {
                (Some(p), _) => (RuleKind::Include, p.to_string()),
                (_, Some(p)) => (RuleKind::Exclude, p.to_string()),
                _ => (RuleKind::Exclude, line.to_string()),
            },
        )
        .collect())
}

use clap::Parser;
use ferry_engine::Streams;

use super::MAX_STREAMS;
use crate::args::{Cli, Command};
use crate::manifests::plan::Plan;
use crate::manifests::render::{render, Inputs};

const PLAN: &str = "image: ferry:1\nrouteHost: dvm.apps.example.com\n\
    source: {namespace: app}\ntarget: {namespace: app2}\n\
    pvcs: [data, 'logs:logs2', {src: disk, volumeMode: Block}]\n";

fn with_streams(value: &str) -> String {
    format!("{PLAN}streams: {value}\n")
}

fn parsed(value: &str) -> Streams {
    Plan::parse(&with_streams(value))
        .unwrap_or_else(|e| panic!("streams: {value} refused: {e:#}"))
        .streams
}

fn refusal(value: &str) -> String {
    match Plan::parse(&with_streams(value)) {
        Ok(plan) => panic!("streams: {value} accepted as {:?}", plan.streams),
        Err(e) => format!("{e:#}"),
    }
}

/// Each rendered container's args: the target's serve first, then one push per PVC.
fn rendered_args(plan_text: &str) -> Vec<Vec<String>> {
    let plan = Plan::parse(plan_text).unwrap();
    let inputs = Inputs {
        pairs: plan.pairs().unwrap(),
        source_groups: Vec::new(),
        target_groups: Vec::new(),
        plan: &plan,
        server_tls: None,
        client_tls: None,
    };
    let objects = render(&inputs);
    let pods = objects.iter().filter_map(|o| match o.kind() {
        "Pod" => Some(&o.value),
        "Job" => Some(&o.value["spec"]["template"]),
        _ => None,
    });
    let args: Vec<Vec<String>> = pods
        .map(|pod| {
            let args = pod["spec"]["containers"][0]["args"].as_array().unwrap();
            args.iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(args.len(), 4, "one serve and three pushes: {args:?}");
    assert_eq!(args[0][0], "serve");
    assert!(args[1..].iter().all(|a| a[0] == "push"), "{args:?}");
    args
}

/// The value after `flag` in `args`, if the flag is there (at most once).
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at: Vec<usize> = (0..args.len()).filter(|&i| args[i] == flag).collect();
    assert!(at.len() <= 1, "{flag} twice in {args:?}");
    at.first().map(|&i| args[i + 1].as_str())
}

/// What the real command line makes of rendered args.
fn cli(args: &[String]) -> Command {
    Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().map(String::as_str)))
        .unwrap_or_else(|e| panic!("ferry refuses the rendered {args:?}: {e}"))
        .command
}

#[test]
fn streams_is_auto_when_absent_and_reads_auto_in_any_case() {
    assert_eq!(Plan::parse(PLAN).unwrap().streams, Streams::Auto);
    for auto in ["auto", "AUTO", "Auto", "'auto'", "\"aUtO\""] {
        assert_eq!(parsed(auto), Streams::Auto, "{auto}");
    }
}

#[test]
fn streams_takes_a_yaml_integer_from_1_to_16() {
    for n in [1, 2, 8, 9, 16] {
        assert_eq!(parsed(&n.to_string()), Streams::Fixed(n), "{n}");
    }
}

#[test]
fn bad_streams_say_what_is_wrong_and_what_to_give() {
    for (value, wrong) in [
        ("0", "streams 0 is too few"),
        ("-3", "streams -3 is too few"),
        ("17", "streams 17 is more than 16"),
        ("100000000000", "streams 100000000000 is more than 16"),
        (
            "10000000000000000000",
            "streams 10000000000000000000 is more than 16",
        ),
        ("-10000000", "streams -10000000 is too few"),
        ("'4'", "streams \"4\" is a quoted string"),
        ("four", "streams \"four\" is neither auto nor a number"),
        (
            "automatic",
            "streams \"automatic\" is neither auto nor a number",
        ),
        ("''", "streams \"\" is neither auto nor a number"),
        ("2.5", "streams 2.5 is not a whole number"),
        ("true", "streams true is not auto or a number"),
        ("[4]", "streams [4] is not auto or a number"),
        ("", "streams is empty (leave the key out for auto)"),
    ] {
        let said = refusal(value);
        assert!(said.contains(wrong), "streams: {value}: {said}");
        assert!(
            said.contains("give auto") && said.contains("from 1 to 16"),
            "streams: {value}: {said}"
        );
    }
}

/// The plan's bound is the command line's: what the plan accepts, push accepts.
#[test]
fn the_plans_bound_is_pushs() {
    let max = MAX_STREAMS.to_string();
    assert_eq!(Streams::parse(&max), Ok(Streams::Fixed(MAX_STREAMS)));
    assert!(Streams::parse(&(MAX_STREAMS + 1).to_string()).is_err());
    assert!(Streams::parse("0").is_err());
}

#[test]
fn auto_renders_no_streams_flags() {
    for plan in [PLAN.to_string(), with_streams("auto")] {
        for args in rendered_args(&plan) {
            assert_eq!(flag(&args, "--streams"), None, "{args:?}");
            assert_eq!(flag(&args, "--max-streams"), None, "{args:?}");
        }
    }
}

#[test]
fn a_number_goes_to_every_push_and_serve_keeps_its_default_up_to_8() {
    for n in ["1", "4", "8"] {
        let args = rendered_args(&with_streams(n));
        assert_eq!(flag(&args[0], "--max-streams"), None, "{:?}", args[0]);
        for push in &args[1..] {
            assert_eq!(flag(push, "--streams"), Some(n), "{push:?}");
        }
    }
}

#[test]
fn more_than_8_streams_raise_serves_max_streams_to_match() {
    let args = rendered_args(&with_streams("12"));
    assert_eq!(flag(&args[0], "--max-streams"), Some("12"), "{:?}", args[0]);
    for push in &args[1..] {
        assert_eq!(flag(push, "--streams"), Some("12"), "{push:?}");
    }
}

/// The flags are spelled as the real command line takes them, and mean the number.
#[test]
fn the_rendered_args_parse_as_ferrys_own_command_line() {
    let args = rendered_args(&with_streams(&MAX_STREAMS.to_string()));
    match cli(&args[0]) {
        Command::Serve(serve) => assert_eq!(serve.max_streams, MAX_STREAMS),
        other => panic!("not serve: {other:?}"),
    }
    for push in &args[1..] {
        match cli(push) {
            Command::Push(push) => {
                assert_eq!(push.transfer.streams, Streams::Fixed(MAX_STREAMS))
            }
            other => panic!("not push: {other:?}"),
        }
    }
}

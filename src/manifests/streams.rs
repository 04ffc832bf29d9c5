//! The plan's `streams:` key: how many connections each source pod's push runs its
//! session over, and what that asks of the target's `ferry serve`.
//!
//! ```text
//! streams: auto | 1..16 ─▶ Streams ─┬▶ push args:  --streams N   (nothing for auto)
//!                                   └▶ serve args: --max-streams N (only when N > 8)
//! ```
//!
//! `auto` is push's own default, so it renders nothing; a pod's CPU limit reaches `auto`
//! through the cores push sees. Serve allows 8 streams per session unless told more, so
//! only a plan asking for more raises it. Owns no other key; imports only the engine's
//! public `Streams` and serve's default.

use ferry_engine::{Streams, DEFAULT_MAX_STREAMS};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The most streams a session runs over: push's `--streams` and serve's `--max-streams`
/// take 1 to this (src/args.rs).
pub const MAX_STREAMS: u16 = 16;

/// `streams:` as serde reads it: a YAML integer from 1 to 16, or the string `auto` in any
/// case. Anything else is refused with what was wrong and what to give.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Streams, D::Error> {
    let value = Value::deserialize(deserializer)?;
    from_value(&value).map_err(|wrong| {
        serde::de::Error::custom(format!(
            "{wrong}; give auto (the default: chosen from the cores and the round trip) \
             or a number of connections from 1 to {MAX_STREAMS}"
        ))
    })
}

/// The streams `value` asks for, or what is wrong with it.
fn from_value(value: &Value) -> Result<Streams, String> {
    match value {
        Value::String(text) if text.eq_ignore_ascii_case("auto") => Ok(Streams::Auto),
        Value::String(text) if text.trim().parse::<i64>().is_ok() => Err(format!(
            "streams {text:?} is a quoted string: write the number without quotes"
        )),
        Value::String(text) => Err(format!("streams {text:?} is neither auto nor a number")),
        Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(n @ 1..), _) if n <= u64::from(MAX_STREAMS) => {
                Ok(Streams::Fixed(n.try_into().expect("at most MAX_STREAMS")))
            }
            (Some(0), _) | (None, Some(_)) => Err(format!(
                "streams {number} is too few: a session runs over at least 1"
            )),
            (Some(_), _) => Err(format!(
                "streams {number} is more than {MAX_STREAMS}, the most a session runs over"
            )),
            (None, None) => Err(format!("streams {number} is not a whole number")),
        },
        Value::Null => Err("streams is empty (leave the key out for auto)".to_string()),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
            Err(format!("streams {value} is not auto or a number"))
        }
    }
}

/// `--streams N` for each source pod's push; nothing for `auto`, push's default.
pub fn push_args(streams: Streams) -> Vec<String> {
    match streams {
        Streams::Auto => Vec::new(),
        Streams::Fixed(n) => vec!["--streams".to_string(), n.to_string()],
    }
}

/// `--max-streams N` for the target's serve when the pushes ask for more streams than
/// serve allows by default; nothing otherwise, so serve keeps its default.
pub fn serve_args(streams: Streams) -> Vec<String> {
    match streams {
        Streams::Fixed(n) if n > DEFAULT_MAX_STREAMS => {
            vec!["--max-streams".to_string(), n.to_string()]
        }
        Streams::Fixed(_) | Streams::Auto => Vec::new(),
    }
}

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;

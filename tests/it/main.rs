//! End-to-end tests: most tests drive the real `ferry` binary (`ferry certs`, `ferry serve`,
//! `ferry push`) or talk to `ferry serve` with a raw protocol client, and then look at the
//! files on disk. The hostile-peer cases (`hostile`, `pull_hostile`) play a source by hand
//! against the engine's target role in-process (`in_process`), each with a few cases
//! against the real binary (their `real` modules).
//!
//! Harness modules come first; the topic modules after them hold the tests.

// Harness.
mod fidelity;
mod files;
mod in_process;
mod raw;
mod raw_server;
mod relay;
mod snapshot;
mod util;

// Tests.
mod block;
mod comparator;
mod compress;
mod config_env;
mod delete;
mod delta;
mod dry_run;
mod errors;
mod faults;
mod filters;
mod handshake;
mod hostile;
mod hostile_streams;
mod hostile_target;
mod in_place;
mod inplace_files;
mod joins;
mod pairing;
mod peer_text;
mod peer_work;
mod pods;
mod progress;
mod pull;
mod pull_hostile;
mod push;
mod route;
mod security;
mod serve;
mod space;
mod temp_names;

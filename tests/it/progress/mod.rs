//! Issue 7: what a push shows while it runs and at the end (the live line in a terminal,
//! `--json` events against their schema, itemized changes) and what `serve` exposes as
//! metrics.

mod events;
mod itemize;
mod metrics;
mod terminal;

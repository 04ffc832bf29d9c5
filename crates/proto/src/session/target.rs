//! The target's session core (being written: see `session`).

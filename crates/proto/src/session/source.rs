//! The source's session core (being written: see `session`).

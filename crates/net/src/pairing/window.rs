//! The pairing window of a server: open from `serve --pair` until its code is used once,
//! expires (`--pair-ttl`), or [`MAX_FAILED_PROOFS`] proofs have failed.
//!
//! While it is open, and only then, a connection that asks for the enrollment protocol
//! is let through TLS without a client certificate. A failed proof does not use the code
//! up (the joiner may have pasted another server's code; a guess at 128 bits is hopeless
//! anyway), but the failures are counted and the window closes at the limit, so nobody
//! gets more than a handful of tries per code.
//!
//! Must not import sockets or the engine; time is passed in, so tests need no clock.

use std::sync::Mutex;
use std::time::Instant;

use super::code::JoinCode;
use super::proof::{verify, EXPORTER_LEN};

/// Failed proofs after which the window closes.
pub const MAX_FAILED_PROOFS: u32 = 3;

/// Why a window is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// A joiner enrolled with the code.
    Used,
    Expired,
    TooManyFailures,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Closed::Used => "its code was used",
            Closed::Expired => "its code expired",
            Closed::TooManyFailures => "too many proofs failed",
        })
    }
}

/// What a proof earned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid, and the code is now used up: issue the certificate.
    Granted,
    /// Invalid; `closed` says whether that was the last failure allowed.
    BadProof { failures: u32, closed: bool },
    /// The window closed before this proof came.
    Closed(Closed),
}

pub struct PairingWindow {
    code: JoinCode,
    deadline: Instant,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Open { failures: u32 },
    Closed(Closed),
}

impl std::fmt::Debug for PairingWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingWindow")
            .field("deadline", &self.deadline)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl PairingWindow {
    pub fn open(code: JoinCode, deadline: Instant) -> PairingWindow {
        PairingWindow {
            code,
            deadline,
            state: Mutex::new(State::Open { failures: 0 }),
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Why the window is closed at `now`, or `None` while it is open.
    pub fn closed(&self, now: Instant) -> Option<Closed> {
        let mut state = self.state.lock().expect("pairing lock");
        if let State::Open { .. } = *state {
            if now >= self.deadline {
                *state = State::Closed(Closed::Expired);
            }
        }
        match *state {
            State::Open { .. } => None,
            State::Closed(why) => Some(why),
        }
    }

    /// Checks a proof made on a connection whose exporter value is `exporter`; a valid
    /// one closes the window (the code is single use) in the same step, so two joiners
    /// with the code cannot both enroll.
    pub fn redeem(
        &self,
        now: Instant,
        exporter: &[u8; EXPORTER_LEN],
        public_key: &[u8],
        name: &[u8],
        proof: &[u8; 32],
    ) -> Verdict {
        if let Some(why) = self.closed(now) {
            return Verdict::Closed(why);
        }
        let mut state = self.state.lock().expect("pairing lock");
        let State::Open { failures } = &mut *state else {
            // Closed by another connection between the two locks.
            return match *state {
                State::Closed(why) => Verdict::Closed(why),
                State::Open { .. } => unreachable!(),
            };
        };
        if verify(self.code.secret(), exporter, public_key, name, proof) {
            *state = State::Closed(Closed::Used);
            return Verdict::Granted;
        }
        *failures += 1;
        let failures = *failures;
        let closed = failures >= MAX_FAILED_PROOFS;
        if closed {
            *state = State::Closed(Closed::TooManyFailures);
        }
        Verdict::BadProof { failures, closed }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pairing::proof::proof;

    const EXPORTER: [u8; EXPORTER_LEN] = [5; EXPORTER_LEN];

    fn window(now: Instant) -> (PairingWindow, JoinCode) {
        let code = JoinCode::new([1; 16], [2; 32]);
        (
            PairingWindow::open(code.clone(), now + Duration::from_secs(60)),
            code,
        )
    }

    #[test]
    fn a_code_is_redeemed_once() {
        let now = Instant::now();
        let (w, code) = window(now);
        let p = proof(code.secret(), &EXPORTER, b"k", b"n");
        assert_eq!(w.redeem(now, &EXPORTER, b"k", b"n", &p), Verdict::Granted);
        assert_eq!(
            w.redeem(now, &EXPORTER, b"k", b"n", &p),
            Verdict::Closed(Closed::Used)
        );
    }

    #[test]
    fn an_expired_window_refuses_a_valid_proof() {
        let now = Instant::now();
        let (w, code) = window(now);
        let later = now + Duration::from_secs(61);
        assert_eq!(w.closed(now), None);
        let p = proof(code.secret(), &EXPORTER, b"k", b"n");
        assert_eq!(
            w.redeem(later, &EXPORTER, b"k", b"n", &p),
            Verdict::Closed(Closed::Expired)
        );
    }

    #[test]
    fn failed_proofs_are_counted_and_close_the_window_at_the_limit() {
        let now = Instant::now();
        let (w, code) = window(now);
        let wrong = proof(&[9; 16], &EXPORTER, b"k", b"n");
        for i in 1..MAX_FAILED_PROOFS {
            assert_eq!(
                w.redeem(now, &EXPORTER, b"k", b"n", &wrong),
                Verdict::BadProof {
                    failures: i,
                    closed: false
                }
            );
        }
        // Still open: the right proof would work here; the last failure closes it.
        assert_eq!(w.closed(now), None);
        assert_eq!(
            w.redeem(now, &EXPORTER, b"k", b"n", &wrong),
            Verdict::BadProof {
                failures: MAX_FAILED_PROOFS,
                closed: true
            }
        );
        let right = proof(code.secret(), &EXPORTER, b"k", b"n");
        assert_eq!(
            w.redeem(now, &EXPORTER, b"k", b"n", &right),
            Verdict::Closed(Closed::TooManyFailures)
        );
    }
}

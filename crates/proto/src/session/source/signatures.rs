//! The block signatures a target sends the source, as the source core keeps them: those
//! still coming in pieces, and the bytes held until a sender has answered the file they
//! are for. Owns the three bounds on them; knows nothing of what a signature contains
//! (a sender parses it, `ferry-delta` owns the format).

use std::collections::{BTreeMap, HashMap};

use super::{WorkId, SIGNATURES_IN_FLIGHT};
use crate::limits::Limits;
use crate::session::stream::StreamId;
use crate::session::SessionError;

/// Signatures being received and the bytes the source holds for them.
pub(super) struct Signatures<F> {
    /// Files asked for as a delta whose signature has not ended yet, with the payload
    /// the work will carry, the stream its `Want` came on and the pieces so far.
    coming: BTreeMap<u64, (F, StreamId, Vec<u8>)>,
    /// Bytes of every signature this side holds: those coming, and those handed to a
    /// sender that has not answered yet.
    held: usize,
    /// What each unanswered delta work holds, and the stream it was asked on.
    answering: HashMap<WorkId, (usize, StreamId)>,
    /// Most bytes of one signature.
    max_signature: usize,
    /// Most bytes held at once: the target's window plus one signature per sender
    /// finishing as the next one arrives.
    pub(super) max_held: usize,
}

impl<F> Signatures<F> {
    pub(super) fn new(limits: &Limits, senders: usize) -> Self {
        Signatures {
            coming: BTreeMap::new(),
            held: 0,
            answering: HashMap::new(),
            max_signature: limits.max_signature,
            max_held: limits
                .signature_window
                .saturating_add(senders.saturating_mul(limits.max_signature)),
        }
    }

    pub(super) fn is_coming(&self, index: u64) -> bool {
        self.coming.contains_key(&index)
    }

    pub(super) fn held(&self) -> usize {
        self.held
    }

    /// Starts receiving the signature of file `index` (asked for as a delta on `stream`).
    pub(super) fn start(
        &mut self,
        index: u64,
        file: F,
        stream: StreamId,
    ) -> Result<(), SessionError> {
        if self.coming.len() >= SIGNATURES_IN_FLIGHT {
            let coming: Vec<String> = self.coming.keys().map(u64::to_string).collect();
            return Err(SessionError::protocol(format!(
                "target sent more than {SIGNATURES_IN_FLIGHT} signatures at once (entry \
                 {index} asked for as a delta while the signatures of entries {} were \
                 still coming)",
                coming.join(", ")
            )));
        }
        self.coming.insert(index, (file, stream, Vec::new()));
        Ok(())
    }

    /// Takes one piece, which came on `stream`; returns the payload and the whole
    /// signature once `last` ends it.
    pub(super) fn piece(
        &mut self,
        index: u64,
        bytes: &[u8],
        last: bool,
        stream: StreamId,
    ) -> Result<Option<(F, Vec<u8>)>, SessionError> {
        let Some((_, asked_on, signature)) = self.coming.get_mut(&index) else {
            return Err(SessionError::protocol(format!(
                "signature for entry {index}, which was not asked for as a delta"
            )));
        };
        if *asked_on != stream {
            return Err(SessionError::protocol(format!(
                "signature for entry {index} on {stream}; its Want came on {asked_on}"
            )));
        }
        if signature.len().saturating_add(bytes.len()) > self.max_signature {
            return Err(SessionError::protocol(format!(
                "signature for entry {index} exceeds {} bytes",
                self.max_signature
            )));
        }
        // The target keeps its signatures for files it has not had yet within the
        // window; senders finishing as the next ones arrive account for the rest.
        let held = self.held.saturating_add(bytes.len());
        if held > self.max_held {
            return Err(SessionError::protocol(format!(
                "target sent {held} bytes of signatures for files it has not had yet, \
                 over the limit of {}",
                self.max_held
            )));
        }
        self.held = held;
        signature.extend_from_slice(bytes);
        if !last {
            return Ok(None);
        }
        Ok(self
            .coming
            .remove(&index)
            .map(|(file, _, signature)| (file, signature)))
    }

    /// The work `id`, asked on `stream`, now holds a signature of `len` bytes until it
    /// is answered.
    pub(super) fn hand_over(&mut self, id: WorkId, len: usize, stream: StreamId) {
        self.answering.insert(id, (len, stream));
    }

    /// A sender answered work `id`: the signature it held leaves this side's memory.
    pub(super) fn answered(&mut self, id: WorkId) {
        if let Some((len, _)) = self.answering.remove(&id) {
            self.held -= len;
        }
    }

    /// Stream `stream` was lost: the signatures coming on it will not end, and the work
    /// asked on it will not be answered; what they held is released.
    pub(super) fn gone(&mut self, stream: StreamId) {
        let mut released = 0;
        self.coming.retain(|_, (_, s, signature)| {
            let keep = *s != stream;
            if !keep {
                released += signature.len();
            }
            keep
        });
        self.answering.retain(|_, (len, s)| {
            let keep = *s != stream;
            if !keep {
                released += *len;
            }
            keep
        });
        self.held -= released;
    }
}

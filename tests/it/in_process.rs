//! The source's end of an in-process target: the engine's real target role, as `serve`
//! runs it for a push or `pull` runs it after its handshake, over memory
//! (`ferry_engine::testing`), played by hand as [`crate::raw`]'s client and server play
//! it over TLS. A case runs in milliseconds instead of a process and a TLS handshake.
//!
//! What it cannot show, the real-process cases do: TLS, the Hello, the binary's exit
//! status and output, its memory.

use std::io;
use std::path::Path;

use ferry_engine::testing::{Ended, TargetPeer};
use ferry_proto::{Filter, Message, SessionOptions};

use crate::raw::{until_end, Recv};

pub struct InProcess {
    peer: TargetPeer,
}

impl InProcess {
    /// The target of a push to `volume`, as `serve` runs it after a Hello with default
    /// options and no filter (what [`crate::raw::RawClient::start_session`] sends).
    pub fn serve(volume: &Path) -> InProcess {
        let peer = TargetPeer::serve(volume, SessionOptions::default(), Filter::default());
        InProcess { peer }
    }

    /// A pull into `dest` with these options and filter, after its handshake.
    pub fn pull(dest: &Path, options: SessionOptions, filter: Filter) -> InProcess {
        InProcess {
            peer: TargetPeer::pull(dest, options, filter),
        }
    }

    pub fn send(&mut self, message: &Message) -> io::Result<()> {
        self.peer.send(message)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.peer.send_raw(bytes)
    }

    /// Ends the stream to the target; what it sends can still be read.
    pub fn close_write(&mut self) {
        self.peer.close_write();
    }

    /// The next message, `Ok(None)` at the end of the stream; `TimedOut` if the target
    /// neither answers nor closes within the hang guard.
    pub fn next(&mut self) -> io::Result<Option<Message>> {
        self.peer.recv()
    }

    /// The next message; panics (hang guard) if the target neither answers nor closes.
    pub fn recv(&mut self) -> Recv {
        match self.peer.recv() {
            Ok(Some(message)) => Recv::Msg(message),
            Ok(None) => Recv::Eof,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => panic!("in-process target: {e}"),
            Err(e) => Recv::Failed(e.to_string()),
        }
    }

    /// As [`crate::raw::RawClient::recv_until_end_with`].
    pub fn recv_until_end_with(&mut self, on_msg: impl FnMut(&mut Self, &Message)) -> Vec<Recv> {
        until_end(self, InProcess::recv, on_msg)
    }

    /// Hangs up and returns how the target's command would have exited.
    pub fn finish(self) -> Ended {
        self.peer.finish()
    }
}

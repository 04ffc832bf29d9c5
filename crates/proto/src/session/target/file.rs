//! One wanted file's content, frame by frame, as the target checks it: pieces continue
//! where the last one ended, stay within the size the file was listed with and reach it;
//! `Delta` only for a file asked for as one; a resumed file starts at the resume offset or
//! over from 0; nothing before the file was asked for or after its end.

use super::Asked;
use crate::message::Message;
use crate::session::stream::StreamId;
use crate::session::SessionError;

/// A file to fetch, and how far its content has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Wanted {
    /// Its size as listed: its content may not go past it, and must reach it.
    pub(super) size: u64,
    /// How it was asked for; its frames may come once it was.
    pub(super) asked: Option<Asked>,
    /// The offset the next piece must start at.
    pub(super) pos: u64,
    /// Resumed, and no piece has come yet: the first one starts at the resume offset
    /// (the source accepted the prefix) or at 0 (it did not).
    pub(super) resuming: bool,
    /// Its `FileEnd` or `FileFailed` came and was passed on.
    pub(super) ended: bool,
    /// The stream it was asked on: its frames come on that stream only.
    pub(super) stream: StreamId,
    /// A frame of it came since it was asked.
    pub(super) started: bool,
}

impl Wanted {
    pub(super) fn new(size: u64) -> Wanted {
        Wanted {
            size,
            asked: None,
            pos: 0,
            resuming: false,
            ended: false,
            stream: StreamId::CONTROL,
            started: false,
        }
    }

    /// Checks a frame of this file on `stream` against the stream it was asked on.
    pub(super) fn check_stream(
        &self,
        index: u64,
        what: &str,
        stream: StreamId,
    ) -> Result<(), SessionError> {
        if self.asked.is_some() && self.stream != stream {
            return Err(SessionError::protocol(format!(
                "{what} for entry {index} on {stream}; it was asked on {}",
                self.stream
            )));
        }
        Ok(())
    }

    /// Checks one entry of a `Files` frame: the whole file of `len` bytes, as `Data` from
    /// offset 0 and `FileEnd` would bring it, only for a file asked whole (on the frame's
    /// stream: checked before) of which nothing came yet.
    pub(super) fn take_whole(&mut self, index: u64, len: u64) -> Result<(), SessionError> {
        match self.asked {
            Some(Asked::Whole) => {}
            Some(Asked::Delta) => {
                return Err(SessionError::protocol(format!(
                    "Files entry for entry {index}, which was asked for as a delta"
                )))
            }
            Some(Asked::Resume { .. }) => {
                return Err(SessionError::protocol(format!(
                    "Files entry for entry {index}, which was asked to resume"
                )))
            }
            Some(Asked::Ranged) => {
                return Err(SessionError::protocol(format!(
                    "Files entry for entry {index}, which was asked in ranges"
                )))
            }
            None => {
                return Err(SessionError::protocol(format!(
                    "Files entry for entry {index}, which the target did not ask for yet"
                )))
            }
        }
        if self.started || self.ended {
            return Err(SessionError::protocol(format!(
                "Files entry for entry {index}, of which a frame came already: a Files \
                 entry carries a whole file"
            )));
        }
        if len != self.size {
            return Err(SessionError::protocol(format!(
                "Files entry for entry {index} carries {len} bytes, but it was listed with \
                 {} bytes",
                self.size
            )));
        }
        self.started = true;
        self.pos = len;
        self.ended = true;
        Ok(())
    }

    /// Checks one frame of this file against how it was asked for and what came before.
    pub(super) fn take(&mut self, index: u64, frame: &Message) -> Result<(), SessionError> {
        let Some(asked) = self.asked else {
            return Err(SessionError::protocol(format!(
                "{} for entry {index}, which the target did not ask for yet",
                frame.name()
            )));
        };
        self.started = true;
        match *frame {
            Message::Data {
                offset, ref bytes, ..
            } => {
                self.settle_resume(offset);
                self.piece(index, "Data", offset, bytes.len() as u64)
            }
            Message::Hole { offset, len, .. } => {
                self.settle_resume(offset);
                self.piece(index, "Hole", offset, len)
            }
            Message::Delta { offset, len, .. } => {
                if asked != Asked::Delta {
                    return Err(SessionError::protocol(format!(
                        "Delta for entry {index}, which was asked for whole"
                    )));
                }
                self.piece(index, "Delta", offset, len)
            }
            Message::FileEnd { size, .. } => {
                if self.resuming && size == 0 {
                    self.settle_resume(0);
                }
                self.resuming = false;
                if size != self.size || self.pos != size {
                    return Err(SessionError::protocol(format!(
                        "entry {index} ended at {} bytes of {} declared (FileEnd says {size})",
                        self.pos, self.size
                    )));
                }
                self.ended = true;
                Ok(())
            }
            Message::FileFailed { .. } => {
                self.ended = true;
                Ok(())
            }
            _ => unreachable!("only file frames come here"),
        }
    }

    /// The first piece of a resumed file says whether the source accepted the prefix.
    fn settle_resume(&mut self, offset: u64) {
        if std::mem::take(&mut self.resuming) && offset == 0 {
            self.pos = 0;
        }
    }

    /// A piece at `offset` of `len` bytes must continue the file within its size.
    fn piece(&mut self, index: u64, what: &str, offset: u64, len: u64) -> Result<(), SessionError> {
        if offset != self.pos {
            return Err(SessionError::protocol(format!(
                "{what} for entry {index} at offset {offset}, expected {}",
                self.pos
            )));
        }
        match offset.checked_add(len) {
            Some(end) if end <= self.size => {
                self.pos = end;
                Ok(())
            }
            _ => Err(SessionError::protocol(format!(
                "{what} for entry {index} writes past its declared size of {} bytes",
                self.size
            ))),
        }
    }
}

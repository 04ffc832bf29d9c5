//! One file being put together by a worker: its temp file (made with its first piece),
//! its running hash, where the next piece must start, and what of an in-place update is
//! already overwritten.

use std::sync::Arc;

use ferry_tree::{Basis, TempFile};

use super::job::Resumed;
use super::outcome::Failure;
use super::ranged::Ranges;
use crate::target::in_place::{InPlace, Overwritten, Why};
use crate::target::plan::{Pending, MIN_RESUME};

pub(super) struct Assembly {
    pub pending: Pending,
    pub basis: Option<Arc<Basis>>,
    pub temp: Option<TempFile>,
    pub pos: u64,
    /// Made with the first piece ([`Assembly::hasher`]): a target wants thousands of
    /// files ahead of their data, and a hasher is 2 KiB (a tree of small files held
    /// 33 MiB of them).
    pub hasher: Option<Box<blake3::Hasher>>,
    /// The hash of a file whose whole content came in its first `Data` frame, taken in
    /// one call (`blake3::hash`): most small files, which then make no hasher at all.
    pub one_shot: Option<blake3::Hash>,
    /// Where a resumed file's new data must start, until the first piece arrives.
    pub resume_at: Option<u64>,
    /// Set when the basis could not be read (another process changed it): the rest of
    /// the file's frames are checked but not written, and its end asks for it whole.
    pub spoiled: bool,
    /// Written in place: what of the file no longer holds its old content.
    pub overwritten: Overwritten,
    /// What this file counts in its worker's load ([`super::pool`] routes by it).
    pub load: u64,
    /// Set for a file received in ranges: its ranges' state ([`super::ranged`]).
    pub ranges: Option<Box<Ranges>>,
}

impl Assembly {
    pub fn new(
        pending: Pending,
        basis: Option<Arc<Basis>>,
        resumed: Option<Box<Resumed>>,
        load: u64,
    ) -> Assembly {
        let mut a = Assembly {
            pending,
            basis,
            temp: None,
            pos: 0,
            hasher: None,
            one_shot: None,
            resume_at: None,
            spoiled: false,
            overwritten: Overwritten::default(),
            load,
            ranges: None,
        };
        if let Some(resumed) = resumed {
            let (temp, offset, hasher) = resumed.take();
            a.temp = Some(temp);
            a.pos = offset;
            a.hasher = Some(Box::new(hasher));
            a.resume_at = Some(offset);
        }
        a
    }

    /// A file received in ranges, into a temp copy made with its first piece, or into
    /// the partial an interrupted session left, whose first ranges it holds.
    pub fn ranged(pending: Pending, resumed: Option<Box<Resumed>>, load: u64) -> Assembly {
        let mut a = Assembly {
            ranges: Some(Box::default()),
            ..Assembly::new(pending, None, None, load)
        };
        if let Some(resumed) = resumed {
            let (temp, held, _) = resumed.take();
            a.temp = Some(temp);
            a.ranges.as_mut().expect("just made").hold(held);
        }
        a
    }

    /// Drops what was written; gives back the file's entry.
    pub fn discard(self) -> Pending {
        if let Some(temp) = self.temp {
            temp.discard(&self.pending.dir);
        }
        self.pending
    }

    /// Left unfinished when the session ended: a partial a later session can resume is
    /// kept, anything else dropped.
    pub fn abandon(mut self) {
        if let (Some(ranges), Some(temp)) = (&self.ranges, self.temp.as_mut()) {
            // Only verified content stays: ranges from 0 that all verified (or were
            // held from an earlier session and not written over).
            self.pos = ranges.kept();
            if temp.set_len(self.pos).is_err() {
                self.pos = 0;
            }
        }
        match self.temp {
            Some(temp) if self.pending.size >= MIN_RESUME && self.pos > 0 && temp.resumable() => {
                temp.keep()
            }
            temp => {
                if let Some(temp) = temp {
                    temp.discard(&self.pending.dir);
                }
            }
        }
    }

    /// A piece at `offset` of `len` bytes continues the file within its size: the
    /// session core checked it (`ferry_proto::session::target`) before the frame came.
    pub fn continues(&self, offset: u64, len: u64) -> bool {
        offset == self.pos
            && offset
                .checked_add(len)
                .is_some_and(|end| end <= self.pending.size)
    }

    /// The file being written. One that can be resumed (1 MiB or more) is written under
    /// its partial name `.ferry.NAME.partial`, the same for every session: a session cut
    /// in the middle, even by SIGKILL, leaves one file per name that the next session
    /// resumes, never a pile of randomly named temp files. A smaller one is written
    /// unnamed (`O_TMPFILE`) and linked into place: a cut leaves nothing, and on ext4 a
    /// link costs less than a create and a rename (30k files: 1.09-1.19 s against
    /// 1.36-1.53 s of system time). Where unnamed files cannot be relied on
    /// ([`ferry_tree::Dir::create_unnamed`] says when), under the partial name too.
    pub fn temp(&mut self) -> Result<&mut TempFile, Failure> {
        if self.temp.is_none() {
            if let InPlace::Chosen { dev, ino, why } = self.pending.in_place {
                match self
                    .pending
                    .dir
                    .open_in_place(&self.pending.name, dev, ino)?
                {
                    Some(file) => {
                        if why == Why::NoRoom {
                            tracing::warn!(
                                "{}: no room on the target for a second copy; updating it in place",
                                self.pending.path
                            );
                        }
                        return Ok(self.temp.insert(file));
                    }
                    None => {
                        tracing::info!(
                            "{}: changed since it was planned, or cannot be marked; writing a temp copy",
                            self.pending.path
                        );
                        self.pending.in_place = InPlace::Never;
                    }
                }
            }
            let dir = &self.pending.dir;
            let unnamed = match self.pending.size < MIN_RESUME {
                true => dir.create_unnamed(&self.pending.name, self.pending.meta.mode)?,
                false => None,
            };
            self.temp = Some(match unnamed {
                Some(file) => file,
                None if self.pending.partial_ok => dir.create_partial(&self.pending.name)?,
                None => dir.create_temp(&self.pending.name)?,
            });
        }
        Ok(self.temp.as_mut().expect("just created"))
    }

    /// The file being written and its running hash, both at once.
    pub fn sinks(&mut self) -> Result<(&mut TempFile, &mut blake3::Hasher), Failure> {
        self.temp()?;
        let file = self.temp.as_mut().expect("temp() just made it");
        Ok((file, self.hasher.get_or_insert_with(Box::default)))
    }

    /// The file's running hash, made on first use.
    pub fn hasher(&mut self) -> &mut blake3::Hasher {
        self.hasher.get_or_insert_with(Box::default)
    }

    /// Hashes a piece at `offset` of the file's content: in one call when it is the
    /// whole file and nothing was hashed before, else into the running hash.
    pub fn hash_piece(&mut self, offset: u64, bytes: &[u8]) {
        let whole = offset == 0 && bytes.len() as u64 == self.pending.size;
        match whole && self.hasher.is_none() && self.one_shot.is_none() {
            true => self.one_shot = Some(blake3::hash(bytes)),
            false => {
                debug_assert!(self.one_shot.is_none() || bytes.is_empty());
                self.hasher().update(bytes);
            }
        }
    }

    /// The hash of all the content so far.
    pub fn content_hash(&mut self) -> blake3::Hash {
        match self.one_shot {
            Some(hash) => hash,
            None => self.hasher().finalize(),
        }
    }

    /// Takes the outcome of creating or writing a temp copy: when it failed for want of
    /// room and the file may be written in place, drops the copy (freeing its space) and
    /// spoils the file, whose end then asks for it again whole, to be written in place;
    /// says whether it did. Any other failure is returned.
    pub fn no_room_for_a_copy(&mut self, outcome: Result<(), Failure>) -> Result<bool, Failure> {
        let e = match outcome {
            Ok(()) => return Ok(false),
            Err(Failure::Tree(e)) if e.is_no_space() => e,
            Err(e) => return Err(e),
        };
        let copy = self.temp.as_ref().is_none_or(|t| !t.is_in_place());
        match self.pending.in_place.for_no_room() {
            Some(in_place) if copy => {
                tracing::warn!(
                    "{}: no room on the target for a second copy ({e}); it will be updated in place",
                    self.pending.path
                );
                if let Some(temp) = self.temp.take() {
                    temp.discard(&self.pending.dir);
                }
                self.pending.in_place = in_place;
                self.spoiled = true;
                Ok(true)
            }
            _ => Err(Failure::Tree(e)),
        }
    }

    /// The first piece of a resumed file says whether the source accepted our prefix: it
    /// starts at the prefix's end, or at 0 when the source's content differs.
    pub fn settle_resume(&mut self, offset: u64) -> Result<(), Failure> {
        if let Some(at) = self.resume_at.take() {
            if offset == 0 && at > 0 {
                if let Some(temp) = self.temp.as_mut() {
                    temp.set_len(0)?;
                }
                self.pos = 0;
                self.hasher = None;
                self.one_shot = None;
            }
        }
        Ok(())
    }
}

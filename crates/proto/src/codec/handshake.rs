//! The handshake's first two messages on the wire: `Hello` (the source's version, volume,
//! options and filter) and `Welcome` (the target's version, its volume's free space, its
//! cores, the streams it grants and their key). Option bits and the filter's size are
//! bounded here; whether a version or a grant is one this side takes is the engine's
//! (`Refused{VersionMismatch}`, exit 12 for a bad `streams_max`).

use bytes::{BufMut, BytesMut};

use super::tags::*;
use super::wire::{put_bytes, Reader};
use crate::limits::Limits;
use crate::message::*;
use crate::session::stream::SessionKey;
use crate::CodecError;

pub fn encode(message: &Message, out: &mut BytesMut) {
    match message {
        Message::Hello {
            version,
            volume,
            options,
            filter,
        } => {
            out.put_u8(HELLO);
            out.put_u32_le(*version);
            put_bytes(out, volume);
            let mut flags = 0u32;
            if options.delete {
                flags |= OPT_DELETE;
            }
            if options.dry_run {
                flags |= OPT_DRY_RUN;
            }
            if options.checksum {
                flags |= OPT_CHECKSUM;
            }
            if options.probe {
                flags |= OPT_PROBE;
            }
            if options.fsync {
                flags |= OPT_FSYNC;
            }
            if options.delete_excluded {
                flags |= OPT_DELETE_EXCLUDED;
            }
            if options.compress {
                flags |= OPT_COMPRESS;
            }
            if options.pull {
                flags |= OPT_PULL;
            }
            if options.no_space_check {
                flags |= OPT_NO_SPACE_CHECK;
            }
            if options.itemize {
                flags |= OPT_ITEMIZE;
            }
            if options.block {
                flags |= OPT_BLOCK;
            }
            if options.inplace {
                flags |= OPT_INPLACE;
            }
            if options.streams {
                flags |= OPT_STREAMS;
            }
            out.put_u32_le(flags);
            out.put_u32_le(filter.rules().len() as u32);
            for rule in filter.rules() {
                out.put_u8(match rule.kind {
                    crate::filter::RuleKind::Include => 1,
                    crate::filter::RuleKind::Exclude => 2,
                });
                put_bytes(out, &rule.pattern);
            }
        }
        Message::Welcome {
            version,
            space,
            cores,
            streams_max,
            key,
        } => {
            out.put_u8(WELCOME);
            out.put_u32_le(*version);
            // Another version's Welcome (a test's) is its version alone, as version 4's.
            if *version != PROTOCOL_VERSION {
                debug_assert!(
                    (space, cores, streams_max, key) == (&None, &0, &1, &None),
                    "fields in a Welcome of version {version}"
                );
                return;
            }
            out.put_u8(u8::from(space.is_some()));
            if let Some(space) = space {
                out.put_u64_le(space.free_bytes);
                out.put_u64_le(space.reserved_bytes);
                out.put_u64_le(space.free_inodes);
                out.put_u64_le(space.block_size);
            }
            out.put_u32_le(*cores);
            out.put_u16_le(*streams_max);
            // As given, also when it breaks the rule (a test's hostile frame): the decoder
            // reads the key only when streams_max > 1.
            if let Some(key) = key {
                out.put_slice(key.as_bytes());
            }
        }
        other => unreachable!("not a handshake message: {other:?}"),
    }
}

pub fn decode(tag: u8, r: &mut Reader<'_>, limits: &Limits) -> Result<Message, CodecError> {
    let message = match tag {
        HELLO => {
            let version = r.u32("version")?;
            let volume = r.bytes("volume", limits.max_name)?.to_vec();
            let flags = r.u32("options")?;
            let known = OPT_DELETE
                | OPT_DRY_RUN
                | OPT_CHECKSUM
                | OPT_PROBE
                | OPT_FSYNC
                | OPT_ITEMIZE
                | OPT_DELETE_EXCLUDED
                | OPT_COMPRESS
                | OPT_PULL
                | OPT_BLOCK
                | OPT_NO_SPACE_CHECK
                | OPT_INPLACE
                | OPT_STREAMS;
            if flags & !known != 0 {
                return Err(CodecError::UnknownOptions {
                    bits: flags & !known,
                });
            }
            // The target matches these against every entry: their count and total size
            // bound that cost (see filter.rs).
            let count = r.count("filter", crate::filter::MAX_RULES, 5)?;
            let mut rules = Vec::with_capacity(count);
            let mut total = 0;
            for _ in 0..count {
                let kind = match r.u8("filter.kind")? {
                    1 => crate::filter::RuleKind::Include,
                    2 => crate::filter::RuleKind::Exclude,
                    other => return Err(r.bad("filter.kind", other.into())),
                };
                let pattern = r.bytes("filter.pattern", crate::filter::MAX_PATTERN)?;
                total += pattern.len();
                if total > crate::filter::MAX_FILTER_BYTES {
                    return Err(r.over(
                        "filter.total_bytes",
                        total as u64,
                        crate::filter::MAX_FILTER_BYTES as u64,
                    ));
                }
                let rule = crate::filter::Rule::new(kind, &pattern)
                    .map_err(|_| r.bad("filter.pattern", pattern.len() as u64))?;
                rules.push(rule);
            }
            Message::Hello {
                version,
                volume,
                options: SessionOptions {
                    delete: flags & OPT_DELETE != 0,
                    dry_run: flags & OPT_DRY_RUN != 0,
                    checksum: flags & OPT_CHECKSUM != 0,
                    probe: flags & OPT_PROBE != 0,
                    fsync: flags & OPT_FSYNC != 0,
                    itemize: flags & OPT_ITEMIZE != 0,
                    delete_excluded: flags & OPT_DELETE_EXCLUDED != 0,
                    compress: flags & OPT_COMPRESS != 0,
                    pull: flags & OPT_PULL != 0,
                    block: flags & OPT_BLOCK != 0,
                    no_space_check: flags & OPT_NO_SPACE_CHECK != 0,
                    inplace: flags & OPT_INPLACE != 0,
                    streams: flags & OPT_STREAMS != 0,
                },
                filter: crate::filter::Filter::new(rules),
            }
        }
        WELCOME => {
            let version = r.u32("version")?;
            if version != PROTOCOL_VERSION {
                // Another version's Welcome may carry other fields: the client only needs
                // its version, to refuse it (exit 2) rather than fail on its layout.
                r.skip_rest();
                return Ok(Message::Welcome {
                    version,
                    space: None,
                    cores: 0,
                    streams_max: 1,
                    key: None,
                });
            }
            let space = match r.flag("space")? {
                false => None,
                true => Some(VolumeSpace {
                    free_bytes: r.u64("free_bytes")?,
                    reserved_bytes: r.u64("reserved_bytes")?,
                    free_inodes: r.u64("free_inodes")?,
                    block_size: r.u64("block_size")?,
                }),
            };
            let cores = r.u32("cores")?;
            // Any count decodes: the client refuses one it does not take (exit 12) with
            // words, rather than a codec error.
            let streams_max = r.u16("streams_max")?;
            let key = match streams_max > 1 {
                true => Some(SessionKey::new(r.array32("key")?)),
                false => None,
            };
            Message::Welcome {
                version,
                space,
                cores,
                streams_max,
                key,
            }
        }
        _ => unreachable!("not a handshake tag: {tag}"),
    };
    Ok(message)
}

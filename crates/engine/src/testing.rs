//! A seam for tests (feature `testing`): the engine's real target role, in-process, with
//! a test playing the source by hand. Not an API; the shipped binary is built without it.
//!
//! [`TargetPeer::serve`] runs what `ferry serve` runs for an admitted push (the target
//! session on a volume) and [`TargetPeer::pull`] what `ferry pull` runs after its
//! handshake (the target session on DEST, then the source's `SourceDone`). Each runs on
//! its own runtime, over an in-memory stream instead of TCP and TLS; the test holds the
//! source's end and, at the end, gets the exit code the command would have exited with.
//!
//! ```text
//! test ── send / send_raw / close_write ──▶ duplex ──▶ FrameReader ─▶ target::run
//!      ◀── recv ◀── pump (unbounded) ◀──── duplex ◀── writer task ◀───────┘
//! TargetPeer::finish ─▶ the command's exit code and error message
//! ```
//!
//! What the session comes before or after is not here: TLS, the Hello and its
//! admission, retries, rate limits, metrics, the printed report, signals. Tests of
//! those, and of the process (its exit status, its output, its memory), run the binary.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ferry_proto::{decode, encode, Filter, Limits, Message, SessionOptions};
use ferry_tree::{Privileges, Volume};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::framed::DEFAULT_HEARTBEAT;

/// Bytes in flight each way before a writer waits, about what a loopback socket holds.
const PIPE_BYTES: usize = 256 * 1024;

/// Hang guard of every send and recv: a target that neither reads, answers nor closes
/// fails the test instead of hanging it.
const IO_GUARD: Duration = Duration::from_secs(60);

/// How long [`TargetPeer::finish`] waits for the session, once the source's end is
/// closed (a target waits up to 30 s for its apply workers).
const END_GUARD: Duration = Duration::from_secs(60);

/// How a session ended, as its command would have exited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The process exit code (`serve --once`'s, or `pull`'s).
    pub code: i32,
    /// The session's error, as the command logs (`serve`) or prints (`pull`) it.
    pub error: Option<String>,
}

/// The source's end of an in-process target session.
pub struct TargetPeer {
    runtime: Option<Runtime>,
    /// To the target; `None` once closed.
    write: Option<WriteHalf<DuplexStream>>,
    /// From the target, read off the stream as it comes (as a socket buffers it), so a
    /// test that writes much before it reads never blocks the target's writer.
    incoming: mpsc::UnboundedReceiver<Vec<u8>>,
    pump: JoinHandle<()>,
    buf: BytesMut,
    limits: Limits,
    session: Option<JoinHandle<Ended>>,
    /// With [`TargetPeer::serve_joinable`]: the server's sessions taking joins, this
    /// session's key, and the joined clients' ends (held so that their streams live).
    joins: Option<Joins>,
}

struct Joins {
    hubs: Arc<crate::serve::hub::Hubs>,
    key: [u8; 32],
    clients: Vec<crate::framed::FrameReader<DuplexStream>>,
}

impl TargetPeer {
    /// Starts the target of a push, as `ferry serve` runs it once it has admitted the
    /// source's Hello with these `options` and `filter`: the volume is `volume`, and the
    /// first frame it expects is the source's `Root`.
    ///
    /// # Panics
    /// If `volume` cannot be opened (`serve` would refuse the Hello).
    pub fn serve(volume: &Path, options: SessionOptions, filter: Filter) -> TargetPeer {
        let volume = Volume::open(volume, Privileges::current())
            .unwrap_or_else(|e| panic!("cannot open the volume {}: {e}", volume.display()));
        let volume = Arc::new(volume);
        TargetPeer::start(move |read, write| async move {
            crate::serve::in_process::push_target(
                volume,
                options,
                filter,
                read,
                write,
                DEFAULT_HEARTBEAT,
                None,
            )
            .await
        })
    }

    /// [`TargetPeer::serve`] of a session whose client asked for streams, as `serve
    /// --max-streams streams_max` admits it from a client of certificate `identity`
    /// (its leaf's SHA-256) under `sni`: it has a key ([`TargetPeer::key`]), and other
    /// connections may [`TargetPeer::join`] it.
    pub fn serve_joinable(
        volume: &Path,
        options: SessionOptions,
        filter: Filter,
        streams_max: u16,
        identity: [u8; 32],
        sni: Option<&str>,
    ) -> TargetPeer {
        let volume = Volume::open(volume, Privileges::current())
            .unwrap_or_else(|e| panic!("cannot open the volume {}: {e}", volume.display()));
        let volume = Arc::new(volume);
        let runtime = new_runtime();
        let hubs = Arc::new(crate::serve::hub::Hubs::default());
        let opener = crate::serve::hub::Opener {
            identity,
            sni: sni.map(str::to_owned),
        };
        let registration = {
            let _inside = runtime.enter();
            hubs.register(streams_max, opener)
                .expect("a session key from the OS random source")
        };
        let key = *registration.key.as_bytes();
        let session_hubs = hubs.clone();
        let mut peer = TargetPeer::start_on(runtime, move |read, write| async move {
            crate::serve::in_process::push_target(
                volume,
                options,
                filter,
                read,
                write,
                DEFAULT_HEARTBEAT,
                Some((session_hubs, registration)),
            )
            .await
        });
        peer.joins = Some(Joins {
            hubs,
            key,
            clients: Vec::new(),
        });
        peer
    }

    /// The key a [`TargetPeer::serve_joinable`] session handed out in its Welcome.
    pub fn key(&self) -> [u8; 32] {
        self.joins.as_ref().expect("a joinable session").key
    }

    /// Joins another connection to the session as `stream`, presenting `key`, from a
    /// client of certificate `identity` under `sni`, as the server answers a `Join` of
    /// its version; returns its answer (`Joined` or `Refused`). A joined connection stays
    /// open until [`TargetPeer::finish`].
    pub fn join(
        &mut self,
        key: [u8; 32],
        stream: u16,
        identity: [u8; 32],
        sni: Option<&str>,
    ) -> io::Result<Option<Message>> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives until finish");
        let joins = self.joins.as_mut().expect("a joinable session");
        let sni = sni.map(str::to_owned);
        let (answer, client) = runtime.block_on(async {
            tokio::time::timeout(
                IO_GUARD,
                crate::serve::in_process::join(&joins.hubs, key, stream, identity, sni),
            )
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer to Join"))
        })?;
        joins.clients.push(client);
        answer
    }

    /// Starts `ferry pull` into `dest` with these `options` and `filter` (as built from
    /// its flags), as it runs once the server has answered its Hello: the first frame
    /// it expects is the source's `Root`; after its `Done` it waits for `SourceDone`.
    pub fn pull(dest: &Path, options: SessionOptions, filter: Filter) -> TargetPeer {
        let dest = dest.to_path_buf();
        TargetPeer::start(move |read, write| async move {
            crate::pull::in_process::pull_target(
                &dest,
                options,
                filter,
                read,
                write,
                DEFAULT_HEARTBEAT,
            )
            .await
        })
    }

    fn start<F, S>(session: S) -> TargetPeer
    where
        S: FnOnce(tokio::io::ReadHalf<DuplexStream>, WriteHalf<DuplexStream>) -> F + Send + 'static,
        F: std::future::Future<Output = (crate::ExitCode, Option<String>)> + Send + 'static,
    {
        TargetPeer::start_on(new_runtime(), session)
    }

    fn start_on<F, S>(runtime: Runtime, session: S) -> TargetPeer
    where
        S: FnOnce(tokio::io::ReadHalf<DuplexStream>, WriteHalf<DuplexStream>) -> F + Send + 'static,
        F: std::future::Future<Output = (crate::ExitCode, Option<String>)> + Send + 'static,
    {
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        let (mut read, write) = tokio::io::split(ours);
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let pump = runtime.spawn(async move {
            let mut chunk = vec![0u8; 64 * 1024];
            while let Ok(n @ 1..) = read.read(&mut chunk).await {
                if incoming_tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let session = runtime.spawn(async move {
            let (read, write) = tokio::io::split(theirs);
            let (code, error) = session(read, write).await;
            Ended {
                code: i32::from(code.code()),
                error,
            }
        });
        TargetPeer {
            runtime: Some(runtime),
            write: Some(write),
            incoming,
            pump,
            buf: BytesMut::new(),
            limits: Limits::default(),
            session: Some(session),
            joins: None,
        }
    }

    fn runtime(&self) -> &Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives until finish")
    }

    /// Sends one well-formed frame of `message`.
    pub fn send(&mut self, message: &Message) -> io::Result<()> {
        let mut frame = BytesMut::new();
        encode(message, &mut frame);
        self.send_raw(&frame)
    }

    /// Sends `bytes` as they are (frames, parts of frames, anything). Fails once the
    /// target has ended the session and let go of its end (a broken pipe), or after
    /// [`IO_GUARD`] if it does not read.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives until finish");
        let Some(write) = self.write.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the source's end was closed",
            ));
        };
        runtime.block_on(async {
            tokio::time::timeout(IO_GUARD, write.write_all(bytes))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the target read nothing for {IO_GUARD:?}"),
                    )
                })?
        })
    }

    /// Ends the stream to the target (it reads end of stream); what it sends back can
    /// still be read.
    pub fn close_write(&mut self) {
        if let Some(mut write) = self.write.take() {
            let _ = self.runtime().block_on(write.shutdown());
        }
    }

    /// The target's next message; `Ok(None)` once it has closed its end cleanly.
    /// `InvalidData` for bytes that do not decode, `UnexpectedEof` for a stream that
    /// ends inside a frame, `TimedOut` if it neither sends nor closes within
    /// [`IO_GUARD`].
    pub fn recv(&mut self) -> io::Result<Option<Message>> {
        loop {
            match decode(&mut self.buf, &self.limits) {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("undecodable bytes from the target: {e}"),
                    ))
                }
            }
            let runtime = self
                .runtime
                .as_ref()
                .expect("the runtime lives until finish");
            let incoming = &mut self.incoming;
            let next =
                runtime.block_on(async { tokio::time::timeout(IO_GUARD, incoming.recv()).await });
            match next {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) if self.buf.is_empty() => return Ok(None),
                Ok(None) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the target closed its end inside a frame ({} bytes)",
                            self.buf.len()
                        ),
                    ))
                }
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the target neither sent nor closed within {IO_GUARD:?}"),
                    ))
                }
            }
        }
    }

    /// Drops the source's end of the stream (as a source that hangs up), waits for the
    /// session to end, and returns how its command would have exited.
    ///
    /// # Panics
    /// If the session does not end within [`END_GUARD`] of that.
    pub fn finish(mut self) -> Ended {
        self.write = None;
        // The joined clients hang up too (a session over waits for them a little).
        if let Some(joins) = &mut self.joins {
            joins.clients.clear();
        }
        self.pump.abort();
        let session = self.session.take().expect("finished once");
        let runtime = self.runtime.take().expect("finished once");
        let ended = runtime.block_on(async {
            // The pump lets go of its half of the source's end when it stops.
            let _ = (&mut self.pump).await;
            tokio::time::timeout(END_GUARD, session).await
        });
        runtime.shutdown_timeout(Duration::from_secs(5));
        match ended {
            Ok(Ok(ended)) => ended,
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("the target session was stopped: {e}"),
            Err(_) => panic!(
                "the target session did not end within {END_GUARD:?} of the source hanging up"
            ),
        }
    }
}

fn new_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ferry-in-process")
        .enable_all()
        .build()
        .expect("a runtime for the in-process target")
}

impl Drop for TargetPeer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

//! A raw protocol server: TLS with rustls (blocking) on a thread, then a scripted session.
//! It plays a hostile source for `ferry pull`, which connects to it as to `ferry serve`.
//!
//! Built on rustls directly rather than `ferry_net`, like [`crate::raw`], so that it can
//! send bytes no well-behaved server would. It asks for no client certificate: what is
//! under test is what the client does with the server's frames, not who may connect.
//!
//! ```text
//! ferry pull ── Hello ──────────────▶ recorded
//!            ◀─ Welcome, script ────
//!            ── Want{index} ────────▶ answer(index)
//!            ── Wants{indices} ─────▶ answer(index) for each, in order
//!            ── Done ───────────────▶ SourceDone, close
//!            ── anything else ──────▶ recorded, until the client closes
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ferry_proto::{decode, encode, Limits, Message, SourceStats, PROTOCOL_VERSION};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Hang guard on the whole session (heartbeats do not extend it): a client that neither
/// finishes nor closes is cut off, which the test sees as the client's failure, not a hang.
const IO_GUARD: Duration = Duration::from_secs(60);

/// The volume the fake server answers for, whatever the client asks.
pub const VOLUME: &str = "v";

/// One thing the server does.
#[derive(Debug)]
pub enum Step {
    /// A well-formed frame of any message.
    Send(Message),
    /// Any bytes at all, inside the TLS stream.
    Raw(Vec<u8>),
    /// TLS close_notify, then a TCP half-close: the client sees a clean end of stream,
    /// and the server still reads what it sends back.
    CloseWrite,
}

/// The steps that answer a `Want` (or `Resume`, or an entry of `Wants`) for an entry
/// index.
pub type Answer = Box<dyn FnMut(u64) -> Vec<Step> + Send>;

/// The steps that answer a joining connection's first message (its `Join`), or `None`
/// if it sent none. The connection is then read until the client closes it.
pub type JoinAnswer = Arc<dyn Fn(Option<&Message>) -> Vec<Step> + Send + Sync>;

/// What the joining connections did so far, shared with the test (whose [`Answer`] may
/// wait on it: [`JoinLog::wait_until`]).
#[derive(Default)]
pub struct JoinLog {
    state: Mutex<Joins>,
    changed: Condvar,
}

/// The joins so far.
#[derive(Clone, Debug, Default)]
pub struct Joins {
    /// The first message of each, in accept order.
    pub first: Vec<Option<Message>>,
    /// How many were answered (their [`JoinAnswer`] steps all played).
    pub answered: usize,
    /// How many ended after their answer: the client closed them (or they broke).
    pub closed: usize,
}

impl JoinLog {
    fn update(&self, change: impl FnOnce(&mut Joins)) {
        change(&mut self.state.lock().expect("join log lock"));
        self.changed.notify_all();
    }

    /// The joins so far.
    pub fn joins(&self) -> Joins {
        self.state.lock().expect("join log lock").clone()
    }

    /// Waits until `done` holds of the joins; panics after 10 s (hang guard), naming
    /// `what`.
    pub fn wait_until(&self, what: &str, done: impl Fn(&Joins) -> bool) {
        let guard = Duration::from_secs(10);
        let state = self.state.lock().expect("join log lock");
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, guard, |joins| !done(joins))
            .expect("join log lock");
        assert!(
            !timeout.timed_out(),
            "waited {guard:?} for {what}; the joins so far: {state:?}"
        );
    }
}

/// How the session ended.
#[derive(Debug)]
pub enum End {
    /// The client closed the connection cleanly.
    Eof,
    /// No client came, the handshake failed, the connection broke or the client sent
    /// undecodable bytes; shown in failures.
    Failed(#[allow(dead_code)] String),
    /// The client neither finished nor closed within [`IO_GUARD`]; the server hung up.
    Stalled,
}

/// What the client did in the session.
#[derive(Debug)]
pub struct Transcript {
    /// The client's first message, if it got that far.
    pub hello: Option<Message>,
    /// Everything it sent after that, in order.
    pub received: Vec<Message>,
    pub end: End,
}

/// A fake server for one session, listening on 127.0.0.1.
pub struct RawServer {
    addr: SocketAddr,
    thread: JoinHandle<Transcript>,
    /// What every connection after the first (a join) did.
    joins: Arc<JoinLog>,
}

/// The honest answer to the client's `Done` (a puller's): `SourceDone`, then a close.
pub fn source_done() -> Vec<Step> {
    vec![
        Step::Send(Message::SourceDone {
            stats: SourceStats::default(),
        }),
        Step::CloseWrite,
    ]
}

/// The server side of TLS from a `ferry certs` server directory (`tls.crt`, `tls.key`;
/// its `ca.crt` would only verify clients, which this server does not).
pub fn tls_config(server_dir: &Path) -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(server_dir.join("tls.crt"))
        .expect("read tls.crt")
        .collect::<Result<Vec<_>, _>>()
        .expect("parse tls.crt");
    let key = PrivateKeyDer::from_pem_file(server_dir.join("tls.key")).expect("read tls.key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server cert");
    config.alpn_protocols = vec![ferry_net::ALPN.to_vec()];
    Arc::new(config)
}

/// The `Welcome` of a server of this version that grants `streams_max` streams (with a
/// key when that is more than one, as the protocol asks).
pub fn welcome(streams_max: u16) -> Message {
    Message::Welcome {
        version: PROTOCOL_VERSION,
        space: None,
        cores: 2,
        streams_max,
        key: (streams_max > 1).then(|| ferry_proto::SessionKey::new([0x6b; 32])),
    }
}

impl RawServer {
    /// Listens, then on a thread: accepts one connection, reads the client's Hello,
    /// answers Welcome, plays `script`, and answers what the client sends after it
    /// (`Want` and `Resume` with `answer`, `Done` with `SourceDone` and a close) until
    /// the client closes.
    pub fn start(server_dir: &Path, script: Vec<Step>, answer: Answer) -> RawServer {
        RawServer::answering_done(server_dir, script, answer, source_done())
    }

    /// As [`RawServer::start`], answering the client's `Done` with `on_done` instead.
    pub fn answering_done(
        server_dir: &Path,
        script: Vec<Step>,
        answer: Answer,
        on_done: Vec<Step>,
    ) -> RawServer {
        let welcome = vec![Step::Send(welcome(1))];
        RawServer::serve(server_dir, welcome, script, answer, on_done, None)
    }

    /// As [`RawServer::start`], answering the client's Hello with `greeting` instead of
    /// `Welcome` (then `script`).
    pub fn greeting(server_dir: &Path, greeting: Vec<Step>, script: Vec<Step>) -> RawServer {
        let answer: Answer = Box::new(|_| Vec::new());
        RawServer::serve(server_dir, greeting, script, answer, source_done(), None)
    }

    /// As [`RawServer::greeting`], answering each `Want` with `answer`, and every later
    /// connection (a join) is answered by `joins` on a thread of its own and logged in
    /// `log`.
    pub fn joinable(
        server_dir: &Path,
        greeting: Vec<Step>,
        script: Vec<Step>,
        answer: Answer,
        joins: JoinAnswer,
        log: Arc<JoinLog>,
    ) -> RawServer {
        RawServer::serve(
            server_dir,
            greeting,
            script,
            answer,
            source_done(),
            Some((joins, log)),
        )
    }

    fn serve(
        server_dir: &Path,
        greeting: Vec<Step>,
        script: Vec<Step>,
        answer: Answer,
        on_done: Vec<Step>,
        joins: Option<(JoinAnswer, Arc<JoinLog>)>,
    ) -> RawServer {
        let config = tls_config(server_dir);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let log = joins
            .as_ref()
            .map_or_else(Arc::default, |(_, log)| log.clone());
        let thread = std::thread::spawn(move || {
            let conn = Conn::accept(&listener, config.clone());
            match joins {
                Some((joins, log)) => {
                    std::thread::spawn(move || accept_joins(listener, config, joins, log));
                }
                // Any other connection is refused, as by a server that takes no joins.
                None => drop(listener),
            }
            serve_one(conn, greeting, script, answer, on_done)
        });
        RawServer {
            addr,
            thread,
            joins: log,
        }
    }

    /// The first message of each join so far, in accept order.
    pub fn joins(&self) -> Vec<Option<Message>> {
        self.joins.joins().first
    }

    pub fn url(&self) -> String {
        format!("ferry://127.0.0.1:{}/{VOLUME}", self.addr.port())
    }

    /// What the client did; call once the client has exited.
    pub fn finish(self) -> Transcript {
        // A client that never connected leaves the thread in `accept`: this connection
        // ends that wait. A client that did connect is ahead of it in the backlog, and
        // this one is then refused or never accepted.
        let _ = TcpStream::connect(self.addr);
        self.thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// Answers joining connections until the listener fails (the test process ends it).
fn accept_joins(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    joins: JoinAnswer,
    log: Arc<JoinLog>,
) {
    while let Ok(mut conn) = Conn::accept(&listener, config.clone()) {
        let (joins, log) = (joins.clone(), log.clone());
        std::thread::spawn(move || {
            let first = conn.recv().ok().flatten();
            log.update(|j| j.first.push(first.clone()));
            conn.play(joins(first.as_ref()));
            log.update(|j| j.answered += 1);
            while let Ok(Some(_)) = conn.recv() {}
            log.update(|j| j.closed += 1);
        });
    }
}

fn serve_one(
    conn: io::Result<Conn>,
    greeting: Vec<Step>,
    script: Vec<Step>,
    mut answer: Answer,
    on_done: Vec<Step>,
) -> Transcript {
    let mut on_done = Some(on_done);
    let mut transcript = Transcript {
        hello: None,
        received: Vec::new(),
        end: End::Eof,
    };
    let mut conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            transcript.end = End::Failed(format!("no TLS session with a client: {e}"));
            return transcript;
        }
    };
    match conn.recv() {
        Ok(Some(hello @ Message::Hello { .. })) => transcript.hello = Some(hello),
        Ok(Some(other)) => {
            transcript.end = End::Failed(format!("expected Hello, got {}", other.name()));
            return transcript;
        }
        Ok(None) => return transcript,
        Err(end) => {
            transcript.end = end;
            return transcript;
        }
    }
    conn.play(greeting);
    conn.play(script);
    loop {
        let message = match conn.recv() {
            Ok(Some(message)) => message,
            Ok(None) => return transcript,
            Err(end) => {
                transcript.end = end;
                return transcript;
            }
        };
        let reply = match message {
            Message::Want { index, .. } | Message::Resume { index, .. } => answer(index),
            Message::Wants { ref indices } => indices.iter().flat_map(|&i| answer(i)).collect(),
            Message::Done { .. } => on_done.take().unwrap_or_default(),
            _ => Vec::new(),
        };
        transcript.received.push(message);
        conn.play(reply);
    }
}

struct Conn {
    tls: StreamOwned<ServerConnection, TcpStream>,
    buf: BytesMut,
    limits: Limits,
    deadline: Instant,
}

impl Conn {
    fn accept(listener: &TcpListener, config: Arc<ServerConfig>) -> io::Result<Conn> {
        let (tcp, _) = listener.accept()?;
        let deadline = Instant::now() + IO_GUARD;
        tcp.set_read_timeout(Some(IO_GUARD))?;
        tcp.set_write_timeout(Some(IO_GUARD))?;
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(Conn {
            tls,
            buf: BytesMut::new(),
            limits: Limits::default(),
            deadline,
        })
    }

    /// Does `steps`; write errors are ignored, since a client that hung up is seen by
    /// the next read.
    fn play(&mut self, steps: Vec<Step>) {
        for step in steps {
            let _ = match step {
                Step::Send(message) => {
                    let mut frame = BytesMut::new();
                    encode(&message, &mut frame);
                    self.write(&frame)
                }
                Step::Raw(bytes) => self.write(&bytes),
                Step::CloseWrite => {
                    self.tls.conn.send_close_notify();
                    let _ = self.tls.conn.complete_io(&mut self.tls.sock);
                    self.tls.sock.shutdown(Shutdown::Write)
                }
            };
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    /// The client's next message, `None` at a clean end of stream.
    fn recv(&mut self) -> Result<Option<Message>, End> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match decode(&mut self.buf, &self.limits) {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(e) => return Err(End::Failed(format!("undecodable bytes: {e}"))),
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Stalled);
            }
            self.tls
                .sock
                .set_read_timeout(Some(left))
                .map_err(|e| End::Failed(e.to_string()))?;
            match self.tls.read(&mut chunk) {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => return Err(End::Failed("end of stream inside a frame".into())),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(End::Stalled)
                }
                Err(e) => return Err(End::Failed(e.to_string())),
            }
        }
    }
}

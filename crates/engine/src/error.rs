//! The engine's error: a class that decides behaviour (and the exit code) plus a message
//! for a person that says what was wrong and what to do.

use std::fmt;

use ferry_net::{NetError, NetErrorClass};
use ferry_proto::{CodecError, ErrorClass, Message, SessionError};
use ferry_tree::TreeError;

use crate::exit::ExitCode;

/// A fatal error of a command or session.
#[derive(Debug)]
pub struct EngineError {
    pub exit: ExitCode,
    pub message: String,
    /// A condition that may clear by itself (the volume busy with our own previous,
    /// dying session), retried although its class is otherwise permanent.
    pub transient: bool,
}

/// A session core stopped the session: the peer broke a rule (exit 12), or sent a fatal
/// `Error` of its own (its class's exit code).
impl From<SessionError> for EngineError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Protocol(message) => EngineError::protocol(message),
            SessionError::NoSpace(message) => EngineError::file_io(message),
            SessionError::Peer { class, message } => EngineError::new(
                match class {
                    ErrorClass::Protocol => ExitCode::Protocol,
                    ErrorClass::FileIo => ExitCode::FileIo,
                    ErrorClass::Interrupted => ExitCode::Interrupted,
                },
                message,
            ),
        }
    }
}

impl EngineError {
    /// The `Error` that tells a peer why the target ends the session, for the classes
    /// the peer should hear of (a protocol violation, a file I/O failure at the target);
    /// `None` for the rest (a dead socket, a signal: there is no one to tell, or the
    /// peer knows).
    pub fn to_peer(&self) -> Option<Message> {
        let class = match self.exit {
            ExitCode::Protocol => ErrorClass::Protocol,
            ExitCode::FileIo => ErrorClass::FileIo,
            _ => return None,
        };
        Some(Message::Error {
            class,
            message: self.message.clone(),
        })
    }

    pub fn new(exit: ExitCode, message: impl Into<String>) -> Self {
        EngineError {
            exit,
            message: message.into(),
            transient: false,
        }
    }

    /// Marks the error as one that may clear by itself.
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// Whether `--retries` may try again: network failures and timeouts, never auth,
    /// TLS, usage, no space or protocol errors.
    pub fn is_retryable(&self) -> bool {
        self.transient
            || matches!(
                self.exit,
                ExitCode::SocketIo | ExitCode::DataTimeout | ExitCode::ConnectTimeout
            )
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message)
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Protocol, message)
    }

    pub fn socket(message: impl Into<String>) -> Self {
        Self::new(ExitCode::SocketIo, message)
    }

    pub fn file_io(message: impl Into<String>) -> Self {
        Self::new(ExitCode::FileIo, message)
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

impl From<NetError> for EngineError {
    fn from(e: NetError) -> Self {
        let exit = match e.class() {
            NetErrorClass::Config => ExitCode::Usage,
            NetErrorClass::Connect => ExitCode::SocketIo,
            NetErrorClass::Tls | NetErrorClass::Auth => ExitCode::StartFailed,
            NetErrorClass::Timeout => ExitCode::ConnectTimeout,
        };
        EngineError::new(exit, e.to_string())
    }
}

impl From<CodecError> for EngineError {
    fn from(e: CodecError) -> Self {
        match e {
            // Not a broken peer but another version of Ferry: say so, with its own code.
            CodecError::UnknownOptions { .. } => EngineError::new(
                ExitCode::ProtocolVersion,
                format!("{e}; both sides must run the same Ferry version"),
            ),
            e => EngineError::protocol(format!("protocol error from peer: {e}")),
        }
    }
}

impl From<TreeError> for EngineError {
    fn from(e: TreeError) -> Self {
        EngineError::from(&e)
    }
}

impl From<&TreeError> for EngineError {
    fn from(e: &TreeError) -> Self {
        let hint = if e.is_no_space() {
            "; free space on the target volume (or grow the PVC) and run again"
        } else if e.is_read_only_fs() {
            "; the target volume is mounted read-only"
        } else {
            ""
        };
        EngineError::file_io(format!("{e}{hint}"))
    }
}

/// A socket error on an established session.
pub fn io_error(what: &str, e: std::io::Error) -> EngineError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            EngineError::socket(format!("{what}: the peer closed the connection"))
        }
        _ => EngineError::socket(format!("{what}: {e}")),
    }
}

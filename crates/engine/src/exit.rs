//! Exit codes, rsync's where the meaning matches, so controllers that read rsync's can
//! read Ferry's.

/// The outcome of a command as a process exit code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ExitCode {
    #[default]
    Ok = 0,
    /// Bad arguments or configuration.
    Usage = 1,
    /// The peer speaks another protocol version.
    ProtocolVersion = 2,
    /// The session could not start: TLS, authentication, unknown or busy volume.
    StartFailed = 5,
    /// Socket I/O: connect, proxy, reset.
    SocketIo = 10,
    /// File I/O at the target, e.g. no space left.
    FileIo = 11,
    /// The peer broke the protocol.
    Protocol = 12,
    /// Stopped by a signal.
    Interrupted = 20,
    /// Some files could not be transferred (per-file errors).
    Partial = 23,
    /// Some source files vanished or changed while they were read.
    Vanished = 24,
    /// The peer went silent in the middle of a session.
    DataTimeout = 30,
    /// The connection could not be set up in time.
    ConnectTimeout = 35,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

//! Exit statuses and the one error type every subcommand returns.

use std::fmt;
use std::process::ExitCode;

/// What kind of failure ended the command (its exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 1: the environment failed (I/O error, channel end busy, ...).
    Other,
    /// 2: the command line is wrong (bad option, unknown channel, missing file).
    Usage,
    /// 3: the region holds something a correct peer never writes.
    Corrupt,
    /// 4: the peer died, stopped, closed early, or did not show up in time.
    Peer,
}

impl Status {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            Status::Other => 1,
            Status::Usage => 2,
            Status::Corrupt => 3,
            Status::Peer => 4,
        }
    }
}

/// A failure: its status and a message saying what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit status it maps to.
    pub status: Status,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Failure {
    /// A failure with `status`.
    pub fn new(status: Status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Status::Usage, message)
    }

    /// Corrupted shared state (exit 3).
    pub fn corrupt(message: impl Into<String>) -> Failure {
        Failure::new(Status::Corrupt, message)
    }

    /// The peer died or timed out (exit 4).
    pub fn peer(message: impl Into<String>) -> Failure {
        Failure::new(Status::Peer, message)
    }

    /// Any other failure (exit 1).
    pub fn other(message: impl Into<String>) -> Failure {
        Failure::new(Status::Other, message)
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.status.code())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Result of a subcommand.
pub type CliResult<T = ()> = Result<T, Failure>;

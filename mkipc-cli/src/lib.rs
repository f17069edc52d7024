//! The `mkipc` command-line tool: create a shared-memory region file, send into
//! and receive from its channels across processes, and inspect it.
//!
//! * [`args`]: the command line (`--help` per subcommand) and dispatch.
//! * [`create`], [`send`], [`recv`], [`inspect`]: the subcommands.
//! * [`regionfile`]: opening a region file, each end mapping its peer's sections
//!   read-only; the CLI's naming conventions (nodes, lock files).
//! * [`live`]: heartbeats, lock files and the fence of a dead peer process.
//! * [`message`]: generated, sequenced, checksummed messages.
//! * [`failure`]: exit statuses (0 success, 1 other, 2 usage, 3 corrupt shared
//!   state, 4 peer died or timed out).

#![deny(unsafe_code)]

pub mod args;
pub mod create;
pub mod endpoint;
pub mod failure;
pub mod inspect;
pub mod live;
pub mod message;
pub mod recv;
pub mod regionfile;
pub mod send;

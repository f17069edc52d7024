//! Linux userspace binding.
//!
//! * [`SharedMemory`]: regions over a sealed memfd, /dev/shm, hugetlbfs,
//!   /dev/mem, a PCI BAR resource file or a UIO map ([`map_file`] for any file).
//! * [`FutexDoorbell`]/[`FutexWaiter`] (a shared futex on a region word) and
//!   [`EventFd`] (pollable through `AsFd`): the core's doorbell traits.
//! * [`AsyncConsumer`] (feature `tokio`): an SPSC consumer awaiting the eventfd.
//! * [`pin_current_thread`], [`online_cpus`]: CPU pinning.
//! * [`PeerLiveness`], [`LivenessLock`]: is the peer process alive.

mod affinity;
#[cfg(feature = "tokio")]
mod async_consumer;
mod eventfd;
mod futex;
mod liveness;
mod memory;
mod region;

pub use affinity::{online_cpus, pin_current_thread};
#[cfg(feature = "tokio")]
pub use async_consumer::{AsyncConsumer, AsyncRecvError};
pub use eventfd::EventFd;
pub use futex::{FutexDoorbell, FutexError, FutexWaiter, FutexWake};
pub use liveness::{LivenessLock, PeerLiveness};
pub use memory::{Backing, MemoryError, SharedMemory, hugetlbfs_mount};
pub use region::{map_file, map_file_protected};

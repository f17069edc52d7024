//! mkipc: communication between independent kernels (or processes) through shared
//! memory, built to survive a crashed or hostile peer.
//!
//! * [`Region`]: bounds-checked atomic access to shared memory (the only raw-pointer
//!   code in the crate).
//! * [`layout`] and [`header`]: the wire format and the region header.
//! * [`spsc`]: the single-producer, single-consumer ring.
//! * [`pool`]: the zero-copy buffer pool for large payloads.
//! * [`typed`]: typed and byte channels over the pool.
//! * [`doorbell`]: waking a sleeping receiver only when it sleeps (need-wakeup
//!   protocol, spin-then-sleep, blocking SPSC endpoints).
//! * [`mpsc`]: fan-in of up to 64 producers into one consumer, one SPSC lane each.
//! * [`MessageType`]: the message identity both ends of a channel agree on.
//! * [`manifest`], [`handshake`], [`lifecycle`], [`recorder`]: who shares the region,
//!   how channel ends connect, liveness and recovery, and each end's flight recorder.
//!
//! The crate is `no_std` and needs no allocator; the `alloc` feature adds heap-backed
//! regions, `std` (default) implies it. Whatever a peer writes into shared memory
//! yields an error value and a latched, counted [`Fault`], never a panic, a hang or
//! an out-of-bounds access.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod descriptor;
pub mod doorbell;
mod fault;
pub mod handshake;
pub mod header;
pub mod layout;
pub mod lifecycle;
pub mod manifest;
mod message_type;
pub mod mpsc;
pub mod pool;
pub mod recorder;
mod shm;
pub mod spsc;
mod sync;
pub mod typed;

#[cfg(feature = "test-utils")]
pub mod mock;

pub use fault::Fault;
pub use message_type::MessageType;
pub use shm::{AccessError, Region, WORD};

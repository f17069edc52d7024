//! The one place the core takes its atomics from.
//!
//! Under `cfg(loom)` every atomic, fence and spin hint comes from loom, so the
//! concurrency protocols are model-checked with the very code that ships.
//! `cargo xtask test` refuses `sync::atomic` paths anywhere else in the crate.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering, fence};

//! The one place the core takes its atomics from.
//!
//! Under `cfg(loom)` every atomic, fence and spin hint comes from loom, so the
//! concurrency protocols are model-checked with the very code that ships.
//! `clippy.toml` bans the `core` atomics everywhere else in the crate.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering};

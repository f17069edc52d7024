//! Platform bindings for mkipc.
//!
//! * [`linux`] (feature `std`, Linux only): CPU pinning and shared-memory regions
//!   for userspace services.
//! * [`x86_64`] (`no_std`, ring 0): local APIC IPI doorbells (xAPIC and
//!   x2APIC) with an interrupt-driven waiter, TSC timing calibrated against
//!   the PIT, a 16550 serial console; for bare-metal kernels.
//!
//! * [`capi`] (feature `capi`): the C ABI, `include/mkipc.h`.
//!
//! The core crate `mkipc` knows nothing of any platform; this crate supplies the
//! pieces it needs from one.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(all(feature = "std", target_os = "linux"))]
pub mod linux;

#[cfg(feature = "capi")]
pub mod capi;

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

//! x86_64 bare-metal platform code shared by kernel0 and the secondaries:
//! CPU and port access, serial console, GDT/IDT and exception reporting, the
//! 8259 mask, TSC calibration against the PIT, the local APIC (xAPIC MMIO or
//! x2APIC MSRs), interrupt-driven waits, page-table building and the shared
//! boot control page.
//!
//! The pure parsers it relies on live in `bootparse` so they can be tested on
//! the host; this crate holds the parts that touch hardware.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod cell;
pub mod console;
pub mod control;
pub mod cpu;
pub mod exit;
pub mod gdt;
pub mod idt;
pub mod lapic;
pub mod paging;
pub mod pic;
pub mod port;
pub mod serial;
pub mod tsc;
pub mod wait;

/// Vector of the IPI doorbell between kernels.
pub const IPI_VECTOR: u8 = 0xf0;
/// Vector of the local APIC timer (bounds every `hlt`).
pub const TIMER_VECTOR: u8 = 0xf1;
/// Vector of local APIC spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

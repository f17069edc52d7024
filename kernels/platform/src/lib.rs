//! Kernel-specific x86_64 code shared by kernel0 and the secondaries: the
//! node-prefixed console, GDT with TSS and IST stacks, IDT and exception
//! reporting, the 8259 mask, interrupt-driven waits on this IDT, page-table
//! building and the shared boot control page.
//!
//! The reusable platform pieces (CPU instructions, ports, the 16550 UART,
//! TSC calibration against the PIT, the local APIC and the IPI doorbell and
//! waiter) come from `mkipc-sys` (`mkipc_sys::x86_64`) and are re-exported
//! here under their old names. The pure parsers live in `bootparse` so they
//! can be tested on the host.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod cell;
pub mod channels;
pub mod console;
pub mod control;
pub mod exit;
pub mod gdt;
pub mod idt;
pub mod paging;
pub mod pic;
pub mod wait;

pub use mkipc_sys::x86_64::apic as lapic;
pub use mkipc_sys::x86_64::{cpu, doorbell, port, serial, tsc};

/// Vector of the IPI doorbell between kernels.
pub const IPI_VECTOR: u8 = 0xf0;
/// Vector of the local APIC timer (bounds every `hlt`).
pub const TIMER_VECTOR: u8 = 0xf1;
/// Vector of local APIC spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

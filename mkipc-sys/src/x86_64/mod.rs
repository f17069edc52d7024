//! x86_64 bare metal (`no_std`, ring 0): the pieces a kernel needs to run
//! mkipc between CPUs of one machine.
//!
//! * [`apic`]: the local APIC, xAPIC through its MMIO page or x2APIC through
//!   MSRs when CPUID offers it: EOI, fixed/INIT/start-up IPIs, one-shot timer.
//! * [`doorbell`]: the IPI doorbell ([`doorbell::IpiDoorbell::ring`]) with a
//!   fixed vector, and the interrupt-driven waiter ([`doorbell::IpiWaiter`]:
//!   mask interrupts, re-check the condition, `sti; hlt`, bounded by a TSC
//!   deadline).
//! * [`tsc`]: time from the TSC, calibrated against PIT channel 2.
//! * [`serial`]: a polled 16550 UART console.
//! * [`cpu`], [`port`]: the instructions underneath.
//!
//! Everything here runs in ring 0 only: the functions execute privileged
//! instructions, so calling them from a user process faults. The module is
//! compiled for every x86_64 target so the host's lints see it.

pub mod apic;
pub mod cpu;
pub mod doorbell;
pub mod port;
pub mod serial;
pub mod tsc;

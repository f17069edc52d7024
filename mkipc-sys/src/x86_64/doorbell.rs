//! The IPI doorbell between kernels on different CPUs, and the
//! interrupt-driven wait on the receiving side.
//!
//! A doorbell is a fixed-vector IPI to one CPU ([`IpiDoorbell::ring`]). The
//! receiver sleeps in [`IpiWaiter::wait_until`]: it masks interrupts,
//! re-checks its condition (a ring has news), and only then executes
//! `sti; hlt`. An IPI that arrives after the check stays pending while
//! interrupts are masked and wakes the `hlt` at once (the `sti` shadow
//! covers it), so no wake-up is lost between check and sleep. Every sleep is
//! also bounded by the local APIC one-shot timer, so a lost or never-sent
//! doorbell costs latency, never a hang.
//!
//! The kernel owns its IDT: the gate of the doorbell vector must call
//! [`acknowledge`], the timer vector's gate must call [`super::apic::eoi`].
//!
//! Both implement mkipc's platform traits ([`mkipc::doorbell::Doorbell`],
//! [`mkipc::doorbell::Waiter`]), so the core's need-wakeup protocol
//! (`Notifier`, `Sleeper`, `NotifyingProducer`, `BlockingConsumer`) runs
//! on them unchanged: the waiter's snapshot is `cli` plus the count of
//! doorbells taken, read before the re-check.

use super::apic::{self, ApicError};
use super::{cpu, tsc};
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use mkipc::doorbell::{Doorbell, Waiter, Wake};

/// Longest single sleep: the condition is re-checked at least this often
/// even when no doorbell comes.
pub const MAX_SLEEP_US: u64 = 1_000;

/// Doorbell interrupts taken on this image's CPU(s).
static TAKEN: AtomicU64 = AtomicU64::new(0);

/// Rings one CPU with a fixed-vector IPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpiDoorbell {
    dest: u32,
    vector: u8,
}

impl IpiDoorbell {
    /// A doorbell for the CPU with local APIC id `dest`, on `vector`
    /// (32..=255: lower vectors are CPU exceptions).
    pub fn new(dest: u32, vector: u8) -> Result<Self, ApicError> {
        if vector < 32 {
            return Err(ApicError::ReservedVector(vector));
        }
        Ok(IpiDoorbell { dest, vector })
    }

    /// Sends the IPI. Ring it after publishing, so the woken side sees
    /// what it was woken for.
    pub fn ring(&self) -> Result<(), ApicError> {
        apic::send_ipi(self.dest, self.vector)
    }

    /// APIC id of the CPU this doorbell rings.
    pub fn dest(&self) -> u32 {
        self.dest
    }

    /// The vector it rings on.
    pub fn vector(&self) -> u8 {
        self.vector
    }
}

/// Call from the doorbell vector's interrupt handler: counts the wake-up
/// and signals end of interrupt.
pub fn acknowledge() {
    TAKEN.fetch_add(1, Ordering::Relaxed);
    apic::eoi();
}

/// Doorbell interrupts taken so far (counted by [`acknowledge`]).
pub fn taken() -> u64 {
    TAKEN.load(Ordering::Relaxed)
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The condition held.
    Ready,
    /// The deadline passed first.
    TimedOut,
}

/// Sleeps until a condition holds, woken by doorbells and bounded by the
/// local APIC timer.
#[derive(Debug, Clone, Copy)]
pub struct IpiWaiter {
    max_sleep_us: u64,
}

impl IpiWaiter {
    /// A waiter for this CPU.
    ///
    /// # Safety
    /// Ring 0, and the loaded IDT handles the doorbell vector (calling
    /// [`acknowledge`]), the timer vector [`apic::calibrate_timer`] was given
    /// (signalling EOI) and the APIC's spurious vector. Without a
    /// calibrated timer the waiter spins instead of sleeping (still bounded
    /// by the deadline).
    pub const unsafe fn new() -> Self {
        IpiWaiter {
            max_sleep_us: MAX_SLEEP_US,
        }
    }

    /// Waits until `cond` returns true or the TSC reaches `deadline`.
    /// Returns with interrupts masked, as it must be entered: interrupts
    /// are only enabled inside the `sti; hlt` pair.
    pub fn wait_until(&self, deadline: u64, mut cond: impl FnMut() -> bool) -> WaitOutcome {
        loop {
            cpu::cli();
            if cond() {
                apic::stop_timer();
                return WaitOutcome::Ready;
            }
            let now = cpu::rdtsc();
            if now >= deadline {
                apic::stop_timer();
                return WaitOutcome::TimedOut;
            }
            let left_us = tsc::ns_from_cycles(deadline - now) / 1000 + 1;
            if apic::arm_timer_us(left_us.min(self.max_sleep_us)).is_err() {
                // No timer: spin instead, still bounded by `deadline`.
                cpu::pause();
                continue;
            }
            // SAFETY: `new`'s contract: the IDT handles every vector that
            // can arrive (doorbell, timer, spurious). A doorbell that arrived
            // since `cond()` is pending and wakes this hlt at once.
            unsafe { cpu::sti_hlt() };
        }
    }

    /// [`Self::wait_until`] with a deadline `us` microseconds from now.
    pub fn wait_us(&self, us: u64, cond: impl FnMut() -> bool) -> WaitOutcome {
        self.wait_until(tsc::deadline_after_us(us), cond)
    }
}

impl Doorbell for IpiDoorbell {
    type Error = ApicError;

    fn ring(&self) -> Result<(), ApicError> {
        IpiDoorbell::ring(self)
    }
}

impl Waiter for IpiWaiter {
    type Error = ApicError;

    fn now(&self) -> Duration {
        Duration::from_nanos(tsc::ns_from_cycles(cpu::rdtsc()))
    }

    /// Masks interrupts (`cli`) and notes the doorbells taken so far (the
    /// snapshot), calls `ready()` once, and unless it found work sleeps in
    /// `sti; hlt` slices of at most [`MAX_SLEEP_US`] until a doorbell was
    /// taken (`Rung`: any doorbell to this CPU, the caller re-checks) or
    /// `timeout` passed (`TimedOut`). A doorbell landing after the `cli`
    /// stays pending and ends the next `hlt` at once, so it is never lost.
    /// Returns with interrupts masked.
    fn wait_unless<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        timeout: Duration,
    ) -> Result<Wake, ApicError> {
        cpu::cli();
        let snapshot = taken();
        if ready() {
            return Ok(Wake::Ready);
        }
        // At most a day: keeps the cycle count of the deadline in range.
        let us =
            u64::try_from(timeout.as_micros()).map_or(86_400_000_000, |us| us.min(86_400_000_000));
        let deadline = tsc::deadline_after_us(us);
        loop {
            cpu::cli();
            if taken() != snapshot {
                apic::stop_timer();
                return Ok(Wake::Rung);
            }
            let now = cpu::rdtsc();
            if now >= deadline {
                apic::stop_timer();
                return Ok(Wake::TimedOut);
            }
            let left_us = tsc::ns_from_cycles(deadline - now) / 1000 + 1;
            if apic::arm_timer_us(left_us.min(self.max_sleep_us)).is_err() {
                // No timer: spin instead, still bounded by `deadline`.
                cpu::pause();
                continue;
            }
            // SAFETY: `new`'s contract: the IDT handles every vector that
            // can arrive (doorbell, timer, spurious). A doorbell that arrived
            // since the `cli` above is pending and wakes this hlt at once.
            unsafe { cpu::sti_hlt() };
        }
    }
}

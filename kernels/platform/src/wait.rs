//! Interrupt-driven waiting: sleep in `hlt` until a condition holds, woken by
//! an IPI or by the local APIC timer that bounds every sleep.

use crate::{cpu, lapic, tsc};

/// Longest single sleep; the condition is re-checked at least this often.
pub const MAX_SLEEP_US: u64 = 1_000;

/// Sleeps until `cond` is true (returns true) or the TSC passes `deadline`
/// (returns false). Interrupts are masked on return, as on entry: they are
/// only ever enabled inside the `sti; hlt` pair.
pub fn until(deadline: u64, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        cpu::cli();
        if cond() {
            lapic::stop_timer();
            return true;
        }
        let now = cpu::rdtsc();
        if now >= deadline {
            lapic::stop_timer();
            return false;
        }
        let left_us = tsc::ns_from_cycles(deadline - now) / 1000 + 1;
        if lapic::arm_timer_us(left_us.min(MAX_SLEEP_US)).is_err() {
            // No timer: fall back to spinning, still bounded by `deadline`.
            cpu::pause();
            continue;
        }
        // An IPI that arrived since `cond()` is pending and wakes this hlt.
        cpu::sti_hlt();
    }
}

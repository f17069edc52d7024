//! Interrupt-driven waiting on this crate's IDT: `mkipc_sys`'s IPI waiter
//! (mask, re-check, `sti; hlt`, bounded by the APIC timer and a TSC
//! deadline), once [`crate::idt::load`] has installed the gates it needs.

use mkipc_sys::x86_64::doorbell::{IpiWaiter, WaitOutcome};

/// Sleeps until `cond` is true (returns true) or the TSC passes `deadline`
/// (returns false). Interrupts are masked on return, as on entry. Before
/// the IDT is loaded it spins instead (still bounded by `deadline`).
pub fn until(deadline: u64, mut cond: impl FnMut() -> bool) -> bool {
    if !crate::idt::loaded() {
        while !crate::tsc::passed(deadline) {
            if cond() {
                return true;
            }
            crate::cpu::pause();
        }
        return cond();
    }
    // SAFETY: the IDT is loaded (checked above) and handles IPI_VECTOR by
    // `doorbell::acknowledge`, TIMER_VECTOR with an EOI, and
    // SPURIOUS_VECTOR, the three vectors that can reach this CPU.
    let waiter = unsafe { IpiWaiter::new() };
    waiter.wait_until(deadline, cond) == WaitOutcome::Ready
}

/// The IPI waiter for mkipc's need-wakeup protocol (`mkipc::doorbell::
/// Waiter`), or `None` before [`crate::idt::load`].
pub fn waiter() -> Option<IpiWaiter> {
    if !crate::idt::loaded() {
        return None;
    }
    // SAFETY: as in `until`: the IDT is loaded and handles the doorbell,
    // timer and spurious vectors.
    Some(unsafe { IpiWaiter::new() })
}

//! Platform hooks supplied by the C side, and the bounded polling they drive.
//!
//! A C kernel knows how to ring a peer (an IPI, a mailbox register) and how to
//! read a clock (TSC, a timer); mkipc does not. Each endpoint keeps its own copy
//! of an `mkipc_hooks` struct (`mkipc_*_set_hooks`):
//!
//! * `ring_doorbell(ctx)` is called after the endpoint published something the
//!   peer may be waiting for: messages (producer, sender) or returned buffers
//!   (receiver). Consumers do not ring after releasing slots.
//! * `now_ns(ctx)` is a monotonic clock in nanoseconds, used by the `*_timeout`
//!   calls to compute and check their deadline. Builds with `std` fall back to the
//!   process's monotonic clock when it is NULL.
//! * `relax(ctx, deadline_ns)` is called between polls of a timed call: spin
//!   (`pause`), halt until the next interrupt, yield, or sleep on a futex or
//!   eventfd, returning by `deadline_ns` at the latest. NULL spins.
//!
//! The doorbell is rung after every publish today: the need-wakeup protocol of
//! the core's doorbell traits (ring only when the peer sleeps) takes over once
//! those traits are in the core.

use core::ffi::c_void;

use super::status::{Result, Status};

/// Platform hooks (all optional; NULL function pointers are skipped).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MkipcHooks {
    /// Passed unchanged to every hook.
    pub ctx: *mut c_void,
    /// Rings the peer's doorbell.
    pub ring_doorbell: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
    /// Reads a monotonic clock, in nanoseconds.
    pub now_ns: Option<unsafe extern "C" fn(ctx: *mut c_void) -> u64>,
    /// Waits a little between polls, returning by `deadline_ns` at the latest.
    pub relax: Option<unsafe extern "C" fn(ctx: *mut c_void, deadline_ns: u64)>,
}

impl Default for MkipcHooks {
    fn default() -> Self {
        MkipcHooks {
            ctx: core::ptr::null_mut(),
            ring_doorbell: None,
            now_ns: None,
            relax: None,
        }
    }
}

/// Polls in a row that may see the clock stand still before a timed call gives
/// up with `NO_CLOCK` (a clock hook that never advances would otherwise hang).
const STALLED_CLOCK_POLLS: u32 = 1 << 24;

impl MkipcHooks {
    /// Copies the caller's hooks (NULL: no hooks).
    ///
    /// # Safety
    ///
    /// `hooks` is null or points to a readable `mkipc_hooks`.
    pub(crate) unsafe fn from_ptr(hooks: *const MkipcHooks) -> MkipcHooks {
        if hooks.is_null() {
            MkipcHooks::default()
        } else {
            // SAFETY: readable by the contract; every bit pattern the C side can
            // legally store is valid (nullable function pointers, a raw pointer).
            unsafe { hooks.read() }
        }
    }

    /// Rings the peer's doorbell, if a hook is installed.
    pub(crate) fn ring(&self) {
        if let Some(ring) = self.ring_doorbell {
            // SAFETY: the installer promised a callable hook for this `ctx`
            // (contract of `mkipc_*_set_hooks`).
            unsafe { ring(self.ctx) }
        }
    }

    fn now(&self) -> Option<u64> {
        match self.now_ns {
            // SAFETY: as in `ring`.
            Some(now) => Some(unsafe { now(self.ctx) }),
            None => fallback_now(),
        }
    }

    fn relax_until(&self, deadline: u64) {
        match self.relax {
            // SAFETY: as in `ring`.
            Some(relax) => unsafe { relax(self.ctx, deadline) },
            None => core::hint::spin_loop(),
        }
    }

    /// Runs `attempt` until it succeeds, fails with a status `retry` refuses,
    /// or `timeout_ns` passes (0: one attempt). Bounded by the clock, and by
    /// [`STALLED_CLOCK_POLLS`] when the clock stands still.
    pub(crate) fn poll<T>(
        &self,
        timeout_ns: u64,
        retry: impl Fn(Status) -> bool,
        mut attempt: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        match attempt() {
            Err(s) if retry(s) && timeout_ns > 0 => {}
            other => return other,
        }
        let start = self.now().ok_or(Status::NoClock)?;
        let deadline = start.saturating_add(timeout_ns);
        let (mut last, mut still) = (start, 0u32);
        loop {
            self.relax_until(deadline);
            match attempt() {
                Err(s) if retry(s) => {}
                other => return other,
            }
            let now = self.now().ok_or(Status::NoClock)?;
            if now >= deadline {
                return Err(Status::TimedOut);
            }
            if now == last {
                still += 1;
                if still >= STALLED_CLOCK_POLLS {
                    return Err(Status::NoClock);
                }
            } else {
                (last, still) = (now, 0);
            }
        }
    }
}

#[cfg(feature = "std")]
fn fallback_now() -> Option<u64> {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    Some(u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(not(feature = "std"))]
fn fallback_now() -> Option<u64> {
    None
}

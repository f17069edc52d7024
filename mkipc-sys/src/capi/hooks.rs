//! Platform hooks supplied by the C side, and the bounded waits they drive.
//!
//! A C kernel knows how to ring a peer (an IPI, a mailbox register), how to sleep
//! until rung (`hlt` with interrupts, a futex) and how to read a clock (TSC, a
//! timer); mkipc does not. Each endpoint keeps its own copy of an `mkipc_hooks`
//! struct (`mkipc_*_set_hooks`; endpoints connected through a node start with the
//! node's):
//!
//! * `ring_doorbell(ctx)` wakes the peer. Producers and senders follow the core's
//!   need-wakeup protocol ([`mkipc::doorbell::Notifier`]): after publishing they
//!   ring only when the consumer announced in its `need_wakeup` word that it will
//!   sleep, once per announced sleep. Receivers ring after returning pool
//!   buffers (a sender waiting for one polls; see `relax`).
//! * `wait_prepare(ctx)` and `wait(ctx, token, deadline_ns)` put a consumer to
//!   sleep ([`mkipc::doorbell::Sleeper`]): after spinning for a bounded budget, it
//!   announces the sleep, calls `wait_prepare` (take the snapshot that lets a
//!   later ring end the sleep at once: load the futex word, or disable
//!   interrupts), re-checks the ring, and only if it is still empty calls `wait`
//!   with the token `wait_prepare` returned. `wait` returns when rung, by
//!   `deadline_ns`, or spuriously (the consumer re-checks). This is the core
//!   `Waiter` contract (see `mkipc::doorbell::Waiter::wait_unless`).
//! * `now_ns(ctx)` is a monotonic clock in nanoseconds, used by every call with a
//!   timeout.
//! * `relax(ctx, deadline_ns)` is called between polls when no doorbell
//!   announces the awaited event (room in a full ring, a free buffer, a peer's
//!   connect words), and by consumers that have no `wait` hook and no fallback.
//!
//! Builds with `std` on Linux fall back to the monotonic clock when `now_ns` is
//! NULL, and to the Linux binding's futex doorbell when `ring_doorbell` or `wait`
//! is NULL: the shared futex on the ring's `tail` word, woken through
//! [`mkipc_sys::linux::FutexWake`](crate::linux::FutexWake) and slept on through
//! [`FutexWaiter`](crate::linux::FutexWaiter), exactly as the `mkipc` tool and
//! the Rust endpoints of the Linux binding do. So a userspace C program talks to
//! them with no hooks at all.

use core::cell::Cell;
use core::ffi::c_void;
use core::fmt;
use core::time::Duration;

use mkipc::Region;
use mkipc::doorbell::{Doorbell, Sleeper, SpinPolicy, WaitError, Waiter, Wake, WakeFlag};
use mkipc::spsc::RingLayout;

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
    /// Before a consumer's last look at the ring: takes the snapshot that lets a
    /// ring arriving after it end the next `wait` at once, returned as a token.
    pub wait_prepare: Option<unsafe extern "C" fn(ctx: *mut c_void) -> u64>,
    /// Sleeps until rung (after the `wait_prepare` that returned `token`), or
    /// until `deadline_ns`; returning early is allowed.
    pub wait: Option<unsafe extern "C" fn(ctx: *mut c_void, token: u64, deadline_ns: u64)>,
}

impl Default for MkipcHooks {
    fn default() -> Self {
        MkipcHooks {
            ctx: core::ptr::null_mut(),
            ring_doorbell: None,
            now_ns: None,
            relax: None,
            wait_prepare: None,
            wait: None,
        }
    }
}

/// Polls in a row that may see the clock stand still before a timed call gives
/// up with `NO_CLOCK` (a clock hook that never advances would otherwise hang).
const STALLED_CLOCK_POLLS: u32 = 1 << 24;

/// Sleep rounds in a row (each after a full spin budget) that may see the clock
/// stand still before a timed wait gives up with `NO_CLOCK`.
const STALLED_CLOCK_SLEEPS: u32 = 1 << 8;

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

    pub(crate) fn now(&self) -> Option<u64> {
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
    /// or `timeout_ns` passes (0: one attempt; out of time: `TIMED_OUT`).
    /// Bounded by the clock, and by [`STALLED_CLOCK_POLLS`] when the clock
    /// stands still.
    pub(crate) fn poll<T>(
        &self,
        timeout_ns: u64,
        retry: impl Fn(Status) -> bool,
        attempt: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        self.poll_until(timeout_ns, retry, attempt)
            .unwrap_or(Err(Status::TimedOut))
    }

    /// As [`MkipcHooks::poll`], but out of time it returns the status of the
    /// last attempt (what the caller was still waiting for) instead of
    /// `TIMED_OUT`.
    pub(crate) fn poll_last<T>(
        &self,
        timeout_ns: u64,
        retry: impl Fn(Status) -> bool,
        attempt: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        self.poll_until(timeout_ns, retry, attempt)
            .unwrap_or_else(Err)
    }

    /// The loop of [`MkipcHooks::poll`]: `Err(status)` when out of time, with
    /// the status of the last attempt (one `retry` accepted).
    fn poll_until<T>(
        &self,
        timeout_ns: u64,
        retry: impl Fn(Status) -> bool,
        mut attempt: impl FnMut() -> Result<T>,
    ) -> core::result::Result<Result<T>, Status> {
        match attempt() {
            Err(s) if retry(s) && timeout_ns > 0 => {}
            other => return Ok(other),
        }
        let Some(start) = self.now() else {
            return Ok(Err(Status::NoClock));
        };
        let deadline = start.saturating_add(timeout_ns);
        let (mut last, mut still) = (start, 0u32);
        loop {
            self.relax_until(deadline);
            let waiting = match attempt() {
                Err(s) if retry(s) => s,
                other => return Ok(other),
            };
            let Some(now) = self.now() else {
                return Ok(Err(Status::NoClock));
            };
            if now >= deadline {
                return Err(waiting);
            }
            if now == last {
                still += 1;
                if still >= STALLED_CLOCK_POLLS {
                    return Ok(Err(Status::NoClock));
                }
            } else {
                (last, still) = (now, 0);
            }
        }
    }
}

/// The doorbell a producer (or sender) rings through its `Notifier`: the
/// `ring_doorbell` hook, else (std on Linux) the futex on the ring's `tail` word.
#[derive(Debug)]
pub(crate) struct HookBell {
    hooks: Cell<MkipcHooks>,
    #[cfg(all(feature = "std", target_os = "linux"))]
    futex: Option<crate::linux::FutexWake>,
}

impl HookBell {
    /// The bell of the ring at `ring` (its `tail` word is the futex fallback).
    pub(crate) fn new(region: &Region, ring: &RingLayout) -> HookBell {
        #[cfg(not(all(feature = "std", target_os = "linux")))]
        let _ = (region, ring);
        HookBell {
            hooks: Cell::new(MkipcHooks::default()),
            #[cfg(all(feature = "std", target_os = "linux"))]
            futex: crate::linux::FutexWake::new(region.clone(), ring.tail_word()).ok(),
        }
    }

    /// Replaces the hooks (from `mkipc_*_set_hooks`).
    pub(crate) fn set(&self, hooks: MkipcHooks) {
        self.hooks.set(hooks);
    }
}

impl Doorbell for HookBell {
    type Error = core::convert::Infallible;

    fn ring(&self) -> core::result::Result<(), Self::Error> {
        let hooks = self.hooks.get();
        if hooks.ring_doorbell.is_some() {
            hooks.ring();
            return Ok(());
        }
        #[cfg(all(feature = "std", target_os = "linux"))]
        if let Some(futex) = &self.futex {
            // A failed FUTEX_WAKE leaves the consumer to its timeout; the message
            // is published either way, so it is not the sender's error.
            let _ = futex.ring();
        }
        Ok(())
    }
}

/// A consumer's side of the need-wakeup protocol: its flag word, and (std on
/// Linux) the futex fallback on the ring's `tail` word.
#[derive(Debug)]
pub(crate) struct WakeSide {
    flag: WakeFlag,
    #[cfg(all(feature = "std", target_os = "linux"))]
    futex: Option<crate::linux::FutexWaiter>,
}

impl WakeSide {
    /// The consumer side of the ring at `ring`.
    pub(crate) fn new(region: &Region, ring: &RingLayout) -> Result<WakeSide> {
        Ok(WakeSide {
            flag: WakeFlag::new(region.clone(), ring.need_wakeup_word())?,
            #[cfg(all(feature = "std", target_os = "linux"))]
            futex: crate::linux::FutexWaiter::new(region.clone(), ring.tail_word()).ok(),
        })
    }

    fn can_sleep(&self, hooks: &MkipcHooks) -> bool {
        #[cfg(all(feature = "std", target_os = "linux"))]
        if self.futex.is_some() {
            return true;
        }
        hooks.wait.is_some()
    }
}

/// Why a [`HookWaiter`] failed: only the futex fallback can.
#[derive(Debug)]
pub(crate) enum HookWaitError {
    /// The futex system call failed.
    #[cfg(all(feature = "std", target_os = "linux"))]
    Futex(crate::linux::FutexError),
}

impl fmt::Display for HookWaitError {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            #[cfg(all(feature = "std", target_os = "linux"))]
            HookWaitError::Futex(ref e) => write!(_f, "{e}"),
        }
    }
}

/// The core's `Waiter` over the C hooks (or the futex fallback), on the hooks'
/// clock. A clock that stands still for [`STALLED_CLOCK_POLLS`] reads is
/// reported as past every deadline, so no sleep loop can spin for ever.
struct HookWaiter<'a> {
    hooks: MkipcHooks,
    #[cfg(all(feature = "std", target_os = "linux"))]
    futex: Option<&'a crate::linux::FutexWaiter>,
    #[cfg(not(all(feature = "std", target_os = "linux")))]
    futex: core::marker::PhantomData<&'a ()>,
    last: Cell<u64>,
    still: Cell<u32>,
    stalled: Cell<bool>,
}

impl Waiter for HookWaiter<'_> {
    type Error = HookWaitError;

    fn now(&self) -> Duration {
        let now = self.hooks.now().unwrap_or(u64::MAX);
        if now == self.last.get() {
            self.still.set(self.still.get() + 1);
            if self.still.get() >= STALLED_CLOCK_POLLS {
                self.stalled.set(true);
                return Duration::MAX;
            }
        } else {
            self.last.set(now);
            self.still.set(0);
        }
        Duration::from_nanos(now)
    }

    fn wait_unless<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        timeout: Duration,
    ) -> core::result::Result<Wake, HookWaitError> {
        if let Some(wait) = self.hooks.wait {
            let token = match self.hooks.wait_prepare {
                // SAFETY: the installer promised a callable hook for this `ctx`.
                Some(prepare) => unsafe { prepare(self.hooks.ctx) },
                None => 0,
            };
            if ready() {
                return Ok(Wake::Ready);
            }
            let timeout = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let deadline = self.hooks.now().unwrap_or(0).saturating_add(timeout);
            // SAFETY: as above.
            unsafe { wait(self.hooks.ctx, token, deadline) };
            return Ok(Wake::Rung);
        }
        #[cfg(all(feature = "std", target_os = "linux"))]
        if let Some(futex) = self.futex {
            return futex
                .wait_unless(ready, timeout)
                .map_err(HookWaitError::Futex);
        }
        // Unreachable through `wait_for` (it checks `can_sleep`); poll once.
        Ok(if ready() { Wake::Ready } else { Wake::TimedOut })
    }
}

impl MkipcHooks {
    /// Runs `attempt` until it returns anything but `EMPTY`, or `timeout_ns`
    /// passes (0: one attempt), sleeping through the need-wakeup protocol
    /// between attempts when the consumer can sleep (a `wait` hook, or the
    /// futex fallback), else polling as [`MkipcHooks::poll`] does.
    pub(crate) fn wait_for<T>(
        &self,
        side: &mut WakeSide,
        timeout_ns: u64,
        mut attempt: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        if !side.can_sleep(self) {
            return self.poll(timeout_ns, |s| s == Status::Empty, attempt);
        }
        match attempt() {
            Err(Status::Empty) if timeout_ns > 0 => {}
            other => return other,
        }
        let start = self.now().ok_or(Status::NoClock)?;
        let deadline = start.saturating_add(timeout_ns);
        let waiter = HookWaiter {
            hooks: *self,
            #[cfg(all(feature = "std", target_os = "linux"))]
            futex: side.futex.as_ref(),
            #[cfg(not(all(feature = "std", target_os = "linux")))]
            futex: core::marker::PhantomData,
            last: Cell::new(start),
            still: Cell::new(0),
            stalled: Cell::new(false),
        };
        let mut sleeper = Sleeper::new(side.flag.clone(), waiter, SpinPolicy::default());
        let mut outcome = None;
        let (mut last, mut still) = (start, 0u32);
        let result = loop {
            let now = self.now().ok_or(Status::NoClock)?;
            if sleeper.waiter().stalled.get() {
                break Err(Status::NoClock);
            }
            if now >= deadline {
                break Err(Status::TimedOut);
            }
            // Each round spins the whole budget: a clock that stands still for
            // this many rounds ends the wait long before the waiter's own count.
            if now == last {
                still += 1;
                if still >= STALLED_CLOCK_SLEEPS {
                    break Err(Status::NoClock);
                }
            } else {
                (last, still) = (now, 0);
            }
            // The work check is the attempt itself: whatever it finds (a message,
            // a close, a broken ring) ends the wait and is kept.
            let waited = sleeper.wait_until(
                || match attempt() {
                    Err(Status::Empty) => Ok::<bool, Status>(false),
                    other => {
                        outcome = Some(other);
                        Ok(true)
                    }
                },
                Duration::from_nanos(deadline - now),
            );
            if let Some(done) = outcome.take() {
                break done;
            }
            match waited {
                Ok(()) | Err(WaitError::TimedOut) => {}
                Err(WaitError::Check(s)) => break Err(s),
                Err(WaitError::Waiter(_)) => break Err(Status::Io),
            }
        };
        side.flag = sleeper.flag().clone();
        result
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

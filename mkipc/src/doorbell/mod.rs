//! Doorbells: waking a sleeping receiver only when it sleeps.
//!
//! A wake-up (a futex wake, an eventfd write, an IPI) costs microseconds; a cache
//! line moves in tens of nanoseconds. So the receiver polls for a bounded,
//! configurable budget, then announces that it will sleep in its own
//! `need_wakeup` word; the sender rings only when it sees that announcement.
//!
//! * [`Doorbell`] and [`Waiter`]: what a platform supplies (a futex word, an
//!   eventfd, a LAPIC IPI with `hlt`, ...).
//! * [`WakeFlag`], [`Notifier`] and [`Sleeper`]: the need-wakeup protocol itself,
//!   generic over "is there work" (a closure) and the `need_wakeup` word (an
//!   offset in a [`Region`](crate::Region)). It knows nothing of the ring it serves,
//!   so the SPSC ring and the MPSC ring use it unchanged.
//! * [`NotifyingProducer`] and [`BlockingConsumer`]: the protocol wrapped around
//!   the SPSC ring.
//!
//! The protocol (see DESIGN.md, "Doorbells and notification suppression"):
//!
//! ```text
//! receiver (Sleeper)                       sender (Notifier)
//!   poll has_work() up to the spin budget    publish (Release stamp store)
//!   store need_wakeup = epoch|1              fence(SeqCst)
//!   fence(SeqCst)                            flag = load need_wakeup
//!   waiter: snapshot, re-check, sleep        ring iff flag is "asleep" and not
//!   store need_wakeup = epoch (awake)          already rung for this epoch
//! ```
//!
//! The two SeqCst fences forbid the outcome "the receiver's re-check misses the
//! message *and* the sender misses the flag", and the waiter's snapshot, taken
//! before the re-check, turns a ring that lands between re-check and sleep into an
//! immediate return. Hence no wake-up is lost (model-checked in
//! `mkipc/tests/loom_doorbell.rs`).

mod protocol;
mod spsc;

pub use protocol::{
    DEFAULT_SPIN_BUDGET, Notifier, NotifyStats, Sleeper, SpinPolicy, WaitError, WaitStats, WakeFlag,
};
pub use spsc::{BlockingConsumer, NotifyingProducer, RecvError, SendError};

use core::fmt;
use core::time::Duration;

/// The sending side of a wake-up channel: rings the peer.
///
/// A ring must be remembered until the waiter next looks: a ring that lands after
/// the waiter's snapshot (see [`Waiter::wait_unless`]) ends its sleep, whether the
/// waiter had already gone to sleep or not.
pub trait Doorbell {
    /// Why a ring failed.
    type Error: fmt::Debug + fmt::Display;

    /// Wakes the peer's [`Waiter`] (or makes its next wait return at once).
    fn ring(&self) -> Result<(), Self::Error>;
}

impl<D: Doorbell + ?Sized> Doorbell for &D {
    type Error = D::Error;

    fn ring(&self) -> Result<(), Self::Error> {
        (**self).ring()
    }
}

/// How a [`Waiter::wait_unless`] call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The re-check found work; the waiter did not sleep.
    Ready,
    /// The waiter slept and was woken: by a ring, or spuriously (the caller
    /// re-checks either way).
    Rung,
    /// The timeout passed without a ring.
    TimedOut,
}

/// The receiving side of a wake-up channel: sleeps until rung or a timeout.
pub trait Waiter {
    /// Why a wait failed.
    type Error: fmt::Debug + fmt::Display;

    /// Monotonic time since an arbitrary origin (deadlines across several waits).
    fn now(&self) -> Duration;

    /// Sleeps until rung or `timeout` passes, unless `ready()` says there is work.
    ///
    /// The contract that makes wake-ups impossible to lose: **before** calling
    /// `ready()`, take whatever snapshot lets a later ring end the sleep at once,
    /// then call `ready()` once, and sleep only if it returned false:
    ///
    /// * a futex waiter loads the doorbell word (Acquire) and sleeps with
    ///   `FUTEX_WAIT(word, snapshot)`, which returns at once if a ring changed it;
    /// * an eventfd waiter needs no snapshot: the counter keeps a ring until read;
    /// * a bare-metal IPI waiter disables interrupts (`cli`), so an IPI arriving
    ///   after that stays pending, re-checks, then `sti; hlt` (the one-instruction
    ///   interrupt shadow of `sti` means the pending IPI ends the `hlt`), with a
    ///   LAPIC timer for the timeout.
    ///
    /// The snapshot's load must be an Acquire that pairs with the ringer's Release
    /// (or stronger) update, so that a ring seen by the snapshot makes the sender's
    /// publication visible to `ready()`.
    fn wait_unless<F: FnMut() -> bool>(
        &self,
        ready: F,
        timeout: Duration,
    ) -> Result<Wake, Self::Error>;
}

impl<W: Waiter + ?Sized> Waiter for &W {
    type Error = W::Error;

    fn now(&self) -> Duration {
        (**self).now()
    }

    fn wait_unless<F: FnMut() -> bool>(
        &self,
        ready: F,
        timeout: Duration,
    ) -> Result<Wake, Self::Error> {
        (**self).wait_unless(ready, timeout)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests;

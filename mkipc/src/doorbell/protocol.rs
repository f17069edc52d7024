//! The need-wakeup protocol, generic over "is there work" and the flag word.
//!
//! The flag word belongs to the receiver (it sits in the receiver's section, e.g.
//! `ConsumerControl::need_wakeup`). It holds `epoch << 1 | asleep`: bit 0 says "I
//! am about to sleep, ring me", the epoch counts the receiver's sleeps. The sender
//! rings once per epoch, so a burst of messages during the receiver's wake-up
//! latency costs one ring, not one per message. The epoch survives a restart of
//! the receiver (it resumes from its own word), so a restarted receiver never
//! re-announces an epoch the sender has already rung for.

use core::fmt;
use core::time::Duration;

use super::{Doorbell, Waiter, Wake};
use crate::shm::{AccessError, Region};
use crate::sync::{Ordering, fence};

/// Bit 0 of the flag word: the receiver is about to sleep and wants a ring.
const ASLEEP: u64 = 1;

/// Polls before sleeping when nothing else is configured: a few microseconds on
/// current x86 cores, longer than a cross-core cache-line round trip, far shorter
/// than a futex or eventfd wake-up.
pub const DEFAULT_SPIN_BUDGET: u32 = 4096;

/// How long a receiver polls before it announces that it will sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpinPolicy {
    /// Polls of "is there work" before sleeping (0: sleep at once).
    pub spins: u32,
}

impl SpinPolicy {
    /// Poll `spins` times before sleeping.
    pub const fn new(spins: u32) -> SpinPolicy {
        SpinPolicy { spins }
    }

    /// Never poll: announce and sleep at once (lowest CPU use, highest latency).
    pub const fn sleep_at_once() -> SpinPolicy {
        SpinPolicy { spins: 0 }
    }
}

impl Default for SpinPolicy {
    fn default() -> SpinPolicy {
        SpinPolicy::new(DEFAULT_SPIN_BUDGET)
    }
}

/// The receiver's handle on its own `need_wakeup` word.
#[derive(Debug, Clone)]
pub struct WakeFlag {
    region: Region,
    word: usize,
    /// Epoch of the last announcement (private; published in the flag word).
    epoch: u64,
}

impl WakeFlag {
    /// The flag at `word` (the receiver's own word), resuming its epoch.
    pub fn new(region: Region, word: usize) -> Result<WakeFlag, AccessError> {
        // Relaxed: our own word; only this receiver writes it.
        let epoch = region.load(word, Ordering::Relaxed)? >> 1;
        Ok(WakeFlag {
            region,
            word,
            epoch,
        })
    }

    /// The epoch of the last announcement.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Announces "about to sleep" under a new epoch, then a full fence.
    ///
    /// After this, re-check for work; sleep only if there is none.
    #[inline]
    pub fn arm(&mut self) {
        self.epoch = match self.epoch.wrapping_add(1) & (u64::MAX >> 1) {
            0 => 1,
            e => e,
        };
        // Relaxed: ordered before the re-check by the fence below. The word was
        // checked in `new`; a failure here cannot happen, and would only cost
        // this sleep its ring (the wait still ends at its timeout).
        let _ = self
            .region
            .store(self.word, self.epoch << 1 | ASLEEP, Ordering::Relaxed);
        // SeqCst: pairs with the SeqCst fence in `Notifier::notify`. Either our
        // re-check (after this fence) sees the sender's publication, or the
        // sender's flag load (after its fence) sees this announcement.
        fence(Ordering::SeqCst);
    }

    /// Withdraws the announcement (awake again): the sender stops ringing.
    #[inline]
    pub fn disarm(&mut self) {
        // Relaxed: only suppresses rings; a sender that still sees the old
        // announcement rings once more, which costs a spurious wake-up at worst.
        let _ = self
            .region
            .store(self.word, self.epoch << 1, Ordering::Relaxed);
    }
}

/// Counters of a [`Notifier`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NotifyStats {
    /// Doorbells rung.
    pub rung: u64,
    /// Notifications that rang nothing: the receiver was awake, or already rung
    /// for its current sleep.
    pub suppressed: u64,
}

/// The sender's side: rings the receiver's doorbell only when it sleeps.
#[derive(Debug)]
pub struct Notifier<D> {
    region: Region,
    word: usize,
    bell: D,
    /// The flag value we last rang for: one ring per announced sleep.
    last_rung: u64,
    stats: NotifyStats,
}

impl<D: Doorbell> Notifier<D> {
    /// A notifier for the receiver whose flag is the word at `word`.
    pub fn new(region: Region, word: usize, bell: D) -> Result<Notifier<D>, AccessError> {
        region.load(word, Ordering::Relaxed)?;
        Ok(Notifier {
            region,
            word,
            bell,
            last_rung: 0,
            stats: NotifyStats::default(),
        })
    }

    /// Call after publishing: rings if the receiver announced a sleep.
    ///
    /// Returns whether it rang. The flag word is the peer's: any value it holds
    /// only decides whether we ring, at most once per call, so a hostile receiver
    /// can waste its own wake-ups but never make us fail or wait.
    #[inline]
    pub fn notify(&mut self) -> Result<bool, D::Error> {
        // SeqCst: pairs with the SeqCst fence in `WakeFlag::arm` (see there); it
        // also orders our earlier Release publication before the flag load.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above. An unreadable word (impossible:
        // checked in `new`) is treated as "asleep": when in doubt, ring.
        let flag = self
            .region
            .load(self.word, Ordering::Relaxed)
            .unwrap_or(ASLEEP);
        if flag & ASLEEP == 0 || flag == self.last_rung {
            self.stats.suppressed += 1;
            return Ok(false);
        }
        self.last_rung = flag;
        self.stats.rung += 1;
        self.bell.ring()?;
        Ok(true)
    }

    /// Rings unconditionally (to wake a receiver for shutdown, say).
    pub fn ring(&mut self) -> Result<(), D::Error> {
        self.stats.rung += 1;
        self.bell.ring()
    }

    /// The counters.
    pub fn stats(&self) -> NotifyStats {
        self.stats
    }

    /// The doorbell.
    pub fn doorbell(&self) -> &D {
        &self.bell
    }
}

/// Counters of a [`Sleeper`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WaitStats {
    /// Waits that found work while polling (no sleep announced).
    pub spin_hits: u64,
    /// Polls spent in total (the spin budget actually used).
    pub spins: u64,
    /// Sleeps announced whose re-check found work (no sleep taken).
    pub rechecks_ready: u64,
    /// Sleeps taken (the waiter blocked).
    pub sleeps: u64,
    /// Sleeps that ended in a ring and found work.
    pub woken: u64,
    /// Sleeps that ended (ring or early timeout) and found no work.
    pub spurious: u64,
    /// Waits that ended in a timeout.
    pub timeouts: u64,
}

/// Why [`Sleeper::wait_until`] returned without work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError<E, W> {
    /// The timeout passed and there is still no work.
    TimedOut,
    /// The work check failed (the ring is broken).
    Check(E),
    /// The platform's waiter failed.
    Waiter(W),
}

impl<E: fmt::Display, W: fmt::Display> fmt::Display for WaitError<E, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::TimedOut => write!(f, "timed out waiting for the peer"),
            WaitError::Check(e) => write!(f, "{e}"),
            WaitError::Waiter(e) => write!(f, "waiting for the doorbell failed: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display, W: fmt::Debug + fmt::Display> core::error::Error
    for WaitError<E, W>
{
}

/// The receiver's side: spin, announce, re-check, sleep.
#[derive(Debug)]
pub struct Sleeper<W> {
    flag: WakeFlag,
    waiter: W,
    policy: SpinPolicy,
    stats: WaitStats,
}

impl<W: Waiter> Sleeper<W> {
    /// A sleeper announcing in `flag`, sleeping in `waiter`.
    pub fn new(flag: WakeFlag, waiter: W, policy: SpinPolicy) -> Sleeper<W> {
        Sleeper {
            flag,
            waiter,
            policy,
            stats: WaitStats::default(),
        }
    }

    /// The spin budget.
    pub fn policy(&self) -> SpinPolicy {
        self.policy
    }

    /// Changes the spin budget.
    pub fn set_policy(&mut self, policy: SpinPolicy) {
        self.policy = policy;
    }

    /// The counters.
    pub fn stats(&self) -> WaitStats {
        self.stats
    }

    /// The flag.
    pub fn flag(&self) -> &WakeFlag {
        &self.flag
    }

    /// The waiter.
    pub fn waiter(&self) -> &W {
        &self.waiter
    }

    /// Returns once `has_work()` says true, or fails after `timeout`.
    ///
    /// Polls up to the spin budget, then announces a sleep, re-checks inside the
    /// waiter (after its snapshot) and sleeps; after every wake-up it withdraws
    /// the announcement and checks again. Every sleep is bounded by what remains
    /// of `timeout`, so a peer that never rings (or rings for nothing) costs at
    /// most the timeout.
    pub fn wait_until<E>(
        &mut self,
        mut has_work: impl FnMut() -> Result<bool, E>,
        timeout: Duration,
    ) -> Result<(), WaitError<E, W::Error>> {
        for spin in 0..self.policy.spins {
            if has_work().map_err(WaitError::Check)? {
                self.stats.spin_hits += 1;
                self.stats.spins += u64::from(spin) + 1;
                return Ok(());
            }
            core::hint::spin_loop();
        }
        self.stats.spins += u64::from(self.policy.spins);
        // One clock read per wait, and one more per sleep that ends without work.
        let start = self.waiter.now();
        let mut remaining = timeout;
        loop {
            if remaining.is_zero() {
                if has_work().map_err(WaitError::Check)? {
                    return Ok(());
                }
                self.stats.timeouts += 1;
                return Err(WaitError::TimedOut);
            }
            self.flag.arm();
            let mut failed = None;
            let wake = self.waiter.wait_unless(
                || match has_work() {
                    Ok(ready) => ready,
                    Err(e) => {
                        failed = Some(e);
                        true
                    }
                },
                remaining,
            );
            self.flag.disarm();
            if let Some(e) = failed {
                return Err(WaitError::Check(e));
            }
            let wake = wake.map_err(WaitError::Waiter)?;
            match wake {
                Wake::Ready => {
                    self.stats.rechecks_ready += 1;
                    return Ok(());
                }
                Wake::Rung | Wake::TimedOut => {
                    self.stats.sleeps += 1;
                    if has_work().map_err(WaitError::Check)? {
                        self.stats.woken += 1;
                        return Ok(());
                    }
                    if wake == Wake::Rung {
                        self.stats.spurious += 1;
                    }
                    let elapsed = self.waiter.now().saturating_sub(start);
                    remaining = timeout.saturating_sub(elapsed);
                    // A timeout loops back to the check at the top.
                }
            }
        }
    }
}

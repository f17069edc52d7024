//! A futex doorbell on a word of a shared region.
//!
//! The ringer adds one to the word and calls `FUTEX_WAKE`; the waiter snapshots
//! the word, re-checks for work, and sleeps with `FUTEX_WAIT(word, snapshot)`,
//! which the kernel refuses (`EAGAIN`) if a ring changed the word in between: no
//! ring is lost. The futex is **shared** (no `FUTEX_PRIVATE_FLAG`): the kernel keys
//! it by the backing page, so processes that map the region at different
//! addresses meet on the same futex.
//!
//! The word belongs to the ringer (place it in the ringer's section). A peer that
//! scribbles on it can only cause spurious wake-ups, which the protocol re-checks.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use mkipc::AccessError;
use mkipc::Region;
use mkipc::doorbell::{Doorbell, Waiter, Wake};

use std::sync::atomic::Ordering;

/// Why a futex doorbell could not be set up or used.
#[derive(Debug)]
pub enum FutexError {
    /// The word lies outside the region or is not 8-byte aligned.
    BadWord(AccessError),
    /// The futex system call failed.
    Syscall(io::Error),
}

impl fmt::Display for FutexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutexError::BadWord(e) => {
                write!(f, "futex word: {e}; pick an aligned word inside the region")
            }
            FutexError::Syscall(e) => write!(f, "futex system call failed: {e}"),
        }
    }
}

impl std::error::Error for FutexError {}

/// The word a futex doorbell lives in, checked once.
#[derive(Debug, Clone)]
struct FutexWord {
    region: Region,
    offset: usize,
    /// Address of the word's first 4 bytes (the futex compares 32 bits); the
    /// region handle keeps the mapping alive.
    addr: usize,
}

impl FutexWord {
    fn new(region: Region, offset: usize) -> Result<FutexWord, FutexError> {
        let addr = region.word_address(offset).map_err(FutexError::BadWord)?;
        Ok(FutexWord {
            region,
            offset,
            addr: addr.addr(),
        })
    }

    /// `futex(addr, op, val, timeout)`: the raw call.
    fn futex(
        &self,
        op: libc::c_int,
        val: u32,
        timeout: Option<&libc::timespec>,
    ) -> io::Result<i64> {
        let ts = timeout.map_or(std::ptr::null(), std::ptr::from_ref);
        // SAFETY: `addr` is an aligned word inside a live mapping (checked in
        // `new`; `region` keeps it mapped); the kernel reads it atomically and
        // never writes it. `ts` is null or points to a live timespec.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.addr as *const u32,
                op,
                val,
                ts,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    }
}

/// Rings a [`FutexWaiter`] on the same word (in this or another process).
#[derive(Debug, Clone)]
pub struct FutexDoorbell(FutexWord);

impl FutexDoorbell {
    /// A doorbell on the word at `offset` of `region`.
    pub fn new(region: Region, offset: usize) -> Result<FutexDoorbell, FutexError> {
        FutexWord::new(region, offset).map(FutexDoorbell)
    }
}

impl Doorbell for FutexDoorbell {
    type Error = FutexError;

    fn ring(&self) -> Result<(), FutexError> {
        let w = &self.0;
        // Release: pairs with the Acquire snapshot in `FutexWaiter::wait_unless`,
        // so a waiter whose snapshot sees this ring also sees what was published
        // before it. An RMW, so concurrent ringers (MPSC) never collapse into one.
        w.region
            .fetch_add(w.offset, 1, Ordering::Release)
            .map_err(FutexError::BadWord)?;
        w.futex(libc::FUTEX_WAKE, i32::MAX as u32, None)
            .map_err(FutexError::Syscall)?;
        Ok(())
    }
}

/// Wakes [`FutexWaiter`]s on a word that the publication itself changes (the SPSC
/// ring's `tail`, stored after every commit): ringing is `FUTEX_WAKE` only.
///
/// A waiter's snapshot of such a word differs from its value once anything was
/// published after the snapshot, so `FUTEX_WAIT` returns at once and no ring is
/// lost, exactly as with [`FutexDoorbell`]'s increment. The word must change by
/// fewer than 2^32 between a snapshot and the wait (a ring's capacity is far below
/// that, so a ring's tail qualifies). The word stays the publisher's own.
#[derive(Debug, Clone)]
pub struct FutexWake(FutexWord);

impl FutexWake {
    /// Wakes waiters on the word at `offset` of `region`.
    pub fn new(region: Region, offset: usize) -> Result<FutexWake, FutexError> {
        FutexWord::new(region, offset).map(FutexWake)
    }
}

impl Doorbell for FutexWake {
    type Error = FutexError;

    fn ring(&self) -> Result<(), FutexError> {
        // No store: the publication's own Release store of the word (made before the
        // caller's ring) pairs with the Acquire snapshot in `FutexWaiter::wait_unless`.
        self.0
            .futex(libc::FUTEX_WAKE, i32::MAX as u32, None)
            .map_err(FutexError::Syscall)?;
        Ok(())
    }
}

/// Sleeps on a futex word until a [`FutexDoorbell`] rings it.
#[derive(Debug, Clone)]
pub struct FutexWaiter {
    word: FutexWord,
    origin: Instant,
}

impl FutexWaiter {
    /// A waiter on the word at `offset` of `region`.
    pub fn new(region: Region, offset: usize) -> Result<FutexWaiter, FutexError> {
        Ok(FutexWaiter {
            word: FutexWord::new(region, offset)?,
            origin: Instant::now(),
        })
    }
}

impl Waiter for FutexWaiter {
    type Error = FutexError;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wait_unless<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        timeout: Duration,
    ) -> Result<Wake, FutexError> {
        let w = &self.word;
        // Acquire: pairs with the Release increment in `FutexDoorbell::ring`.
        // Taken before the re-check: a ring after it changes the word, and
        // FUTEX_WAIT below then returns at once.
        let snapshot = w
            .region
            .load(w.offset, Ordering::Acquire)
            .map_err(FutexError::BadWord)?;
        if ready() {
            return Ok(Wake::Ready);
        }
        // The futex compares the word's first 4 bytes in memory (little-endian
        // on the wire), read as a native u32.
        let expected = u32::from_ne_bytes((snapshot as u32).to_le_bytes());
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        match w.futex(libc::FUTEX_WAIT, expected, Some(&ts)) {
            Ok(_) => Ok(Wake::Rung),
            Err(e) => match e.raw_os_error() {
                // The word moved before we slept: rung.
                Some(libc::EAGAIN) => Ok(Wake::Rung),
                // A signal: the caller re-checks, like any early wake-up.
                Some(libc::EINTR) => Ok(Wake::Rung),
                Some(libc::ETIMEDOUT) => Ok(Wake::TimedOut),
                _ => Err(FutexError::Syscall(e)),
            },
        }
    }
}

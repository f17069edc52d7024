//! An eventfd doorbell: one fd per direction, shared with the peer (inherited or
//! passed over a Unix socket), pollable by epoll users through [`AsFd`].
//!
//! The counter keeps a ring until it is read, so the waiter needs no snapshot: it
//! re-checks, polls the fd, and drains the counter after a wake-up.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mkipc::doorbell::{Doorbell, Waiter, Wake};

/// A non-blocking Linux eventfd used as a doorbell (ring: add one) and a waiter
/// (sleep until the counter is non-zero, then reset it).
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
    origin: Instant,
}

impl EventFd {
    /// A new eventfd with a zero counter (non-blocking, close-on-exec).
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative return is a new fd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create an eventfd: {e}"),
            ));
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(EventFd::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Wraps an eventfd received from the peer (it must be non-blocking, as
    /// [`EventFd::new`] makes it; a blocking one would make draining block).
    pub fn from_fd(fd: OwnedFd) -> EventFd {
        EventFd {
            fd,
            origin: Instant::now(),
        }
    }

    /// Another handle on the same eventfd (a `dup`), for the other side.
    pub fn try_clone(&self) -> io::Result<EventFd> {
        Ok(EventFd::from_fd(self.fd.try_clone()?))
    }

    /// Reads and resets the counter; 0 if nothing was rung.
    pub fn drain(&self) -> io::Result<u64> {
        let mut value = [0u8; 8];
        loop {
            // SAFETY: the fd is open (owned by self); `value` is 8 writable bytes.
            let n =
                unsafe { libc::read(self.fd.as_raw_fd(), value.as_mut_ptr().cast(), value.len()) };
            if n == 8 {
                return Ok(u64::from_ne_bytes(value));
            }
            if n >= 0 {
                return Err(io::Error::other(format!("eventfd read {n} bytes, not 8")));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(0),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(err),
            }
        }
    }

    /// Waits until the fd is readable or `timeout` passes; true if readable.
    fn poll_readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `pfd` and `ts` are live for the call; one pollfd is passed; a
        // null signal mask leaves the mask alone.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        match rc {
            0 => Ok(false),
            n if n > 0 => Ok(true),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    // Woken by a signal: report it as a wake-up; the caller re-checks.
                    Ok(true)
                } else {
                    Err(err)
                }
            }
        }
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl Doorbell for EventFd {
    type Error = io::Error;

    fn ring(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        loop {
            // SAFETY: the fd is open (owned by self); `one` is 8 readable bytes.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
            if n == 8 {
                return Ok(());
            }
            if n >= 0 {
                return Err(io::Error::other(format!("eventfd wrote {n} bytes, not 8")));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                // The counter is at its maximum: the waiter has rings pending
                // already, so this one is not needed.
                io::ErrorKind::WouldBlock => return Ok(()),
                _ => return Err(err),
            }
        }
    }
}

impl Waiter for EventFd {
    type Error = io::Error;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wait_unless<F: FnMut() -> bool>(&self, mut ready: F, timeout: Duration) -> io::Result<Wake> {
        // No snapshot: a ring stays in the counter until read, so one landing
        // after the re-check below ends the poll at once. Nor a drain first: a
        // stale ring (one whose message an earlier re-check already found) also
        // ends the poll at once, which costs the caller one spurious wake-up; a
        // drain here would cost a system call on every sleep instead, and stale
        // rings are rare (the sender rings once per announced sleep).
        if ready() {
            return Ok(Wake::Ready);
        }
        if self.poll_readable(timeout)? {
            self.drain()?;
            Ok(Wake::Rung)
        } else {
            Ok(Wake::TimedOut)
        }
    }
}

//! eventfd: one counter each way as the doorbell (blocking 8-byte `read`), the
//! 32-byte payload in a shared buffer the doorbell hands over.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::{SMALL, STOP, Small, check, is_stop, message};
use crate::harness::{Client, Server};

const WORDS: usize = SMALL / 8;

/// A Linux eventfd in counter mode: `signal` adds one, `wait` blocks until the
/// counter is non-zero and resets it.
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new eventfd with a zero counter.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a non-negative return is a new fd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Adds one to the counter, waking a blocked `wait`.
    pub fn signal(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        loop {
            // SAFETY: the fd is open (owned by self); `one` is 8 readable bytes.
            let n = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), one.len()) };
            if n == 8 {
                return Ok(());
            }
            if n >= 0 {
                return Err(io::Error::other(format!("eventfd moved {n} bytes, not 8")));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Blocks until the counter is non-zero; returns it and resets it to zero.
    pub fn wait(&self) -> io::Result<u64> {
        let mut value = [0u8; 8];
        loop {
            // SAFETY: the fd is open (owned by self); `value` is 8 writable bytes.
            let n =
                unsafe { libc::read(self.0.as_raw_fd(), value.as_mut_ptr().cast(), value.len()) };
            if n == 8 {
                return Ok(u64::from_ne_bytes(value));
            }
            if n >= 0 {
                return Err(io::Error::other(format!("eventfd moved {n} bytes, not 8")));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// One direction: the payload words and the doorbell that hands them over.
struct Mailbox {
    words: CachePadded<[AtomicU64; WORDS]>,
    bell: EventFd,
}

impl Mailbox {
    fn new() -> Mailbox {
        Mailbox {
            words: CachePadded::new(Default::default()),
            bell: EventFd::new().expect("eventfd"),
        }
    }

    /// Writes `msg` into the shared words, then rings.
    fn post(&self, msg: &Small) {
        for (word, bytes) in self.words.iter().zip(msg.chunks_exact(8)) {
            // Relaxed: ordered before the reader's loads by the eventfd write/read
            // pair below (the kernel serialises both under the eventfd's lock, a
            // release/acquire pair outside the Rust model). Every word is
            // checked on arrival, so a stale load would fail loudly.
            word.store(
                u64::from_le_bytes(bytes.try_into().unwrap()),
                Ordering::Relaxed,
            );
        }
        self.bell.signal().expect("eventfd write");
    }

    /// Waits for the bell, then reads the shared words.
    fn take(&self) -> Small {
        self.bell.wait().expect("eventfd read");
        let mut msg = [0u8; SMALL];
        for (word, bytes) in self.words.iter().zip(msg.chunks_exact_mut(8)) {
            // Relaxed: pairs with the writer's stores through the eventfd
            // handshake (see `post`).
            bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        msg
    }
}

struct Mailboxes {
    req: Mailbox,
    rep: Mailbox,
}

/// Posts requests, blocks on the reply eventfd.
pub struct EventFdClient(Arc<Mailboxes>);

/// Blocks on the request eventfd, posts the echo.
pub struct EventFdServer(Arc<Mailboxes>);

/// A connected echo pair.
pub fn pair() -> (EventFdClient, EventFdServer) {
    let boxes = Arc::new(Mailboxes {
        req: Mailbox::new(),
        rep: Mailbox::new(),
    });
    (EventFdClient(boxes.clone()), EventFdServer(boxes))
}

impl Client for EventFdClient {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        self.0.req.post(&message(seq));
        check(&self.0.rep.take(), seq);
    }

    fn stop(&mut self) {
        self.0.req.post(&message(STOP));
    }
}

impl Server for EventFdServer {
    fn serve(&mut self) {
        loop {
            let msg = self.0.req.take();
            if is_stop(&msg) {
                return;
            }
            self.0.rep.post(&msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_counts_and_resets() {
        let e = EventFd::new().unwrap();
        e.signal().unwrap();
        e.signal().unwrap();
        assert_eq!(e.wait().unwrap(), 2);
        e.signal().unwrap();
        assert_eq!(e.wait().unwrap(), 1);
    }
}

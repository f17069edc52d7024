//! Is the peer process alive? A pidfd (immune to pid reuse once opened) or an
//! advisory lock the live peer holds on a file (works for peers that are not
//! our children and across pid namespaces).
//!
//! This answers "alive or dead" only; the core's liveness state machine
//! (heartbeats, epochs, fencing) consumes it.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// Interval at which a lock-based watch polls in [`PeerLiveness::wait_dead`].
const LOCK_POLL: Duration = Duration::from_millis(2);

/// Watches one peer process.
#[derive(Debug)]
pub struct PeerLiveness {
    how: How,
}

#[derive(Debug)]
enum How {
    Pidfd(OwnedFd),
    Lock(File),
}

impl PeerLiveness {
    /// Watches process `pid` through a pidfd. Open it while the peer is known to
    /// be alive (at connect), so that a later reuse of the pid cannot fool it.
    pub fn pidfd(pid: u32) -> io::Result<PeerLiveness> {
        let pid = libc::pid_t::try_from(pid).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{pid} is not a valid pid"),
            )
        })?;
        // SAFETY: pidfd_open takes a pid and flags, no pointers.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            let hint = if e.raw_os_error() == Some(libc::ESRCH) {
                "no such process: the peer is already gone"
            } else {
                "pidfd_open needs Linux 5.3 or later"
            };
            return Err(io::Error::new(
                e.kind(),
                format!("cannot watch process {pid}: {e} ({hint})"),
            ));
        }
        // SAFETY: a non-negative return of pidfd_open is a new fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(PeerLiveness {
            how: How::Pidfd(fd),
        })
    }

    /// Watches whoever holds the lock of [`LivenessLock::hold`] on `path`: the
    /// peer is alive while it holds it (the kernel drops it when the process dies).
    pub fn lock_file(path: &Path) -> io::Result<PeerLiveness> {
        let file = File::options().read(true).open(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open liveness file {}: {e}", path.display()),
            )
        })?;
        Ok(PeerLiveness {
            how: How::Lock(file),
        })
    }

    /// Whether the peer is alive now.
    pub fn is_alive(&self) -> io::Result<bool> {
        match &self.how {
            How::Pidfd(fd) => Ok(!poll_in(fd.as_raw_fd(), Duration::ZERO)?),
            How::Lock(file) => lock_held(file),
        }
    }

    /// Waits at most `timeout` for the peer to die; true if it is dead.
    pub fn wait_dead(&self, timeout: Duration) -> io::Result<bool> {
        match &self.how {
            How::Pidfd(fd) => poll_in(fd.as_raw_fd(), timeout),
            How::Lock(file) => {
                let deadline = Instant::now() + timeout;
                loop {
                    if !lock_held(file)? {
                        return Ok(true);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(false);
                    }
                    std::thread::sleep(LOCK_POLL.min(deadline - now));
                }
            }
        }
    }
}

/// The live side's proof of life: an exclusive lock on a file, held until drop
/// (or death).
#[derive(Debug)]
pub struct LivenessLock {
    /// Holds the lock: the kernel releases it when this closes (drop or death).
    _file: File,
}

impl LivenessLock {
    /// Creates `path` if needed and locks it; fails if another live process holds it.
    pub fn hold(path: &Path) -> io::Result<LivenessLock> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open liveness file {}: {e}", path.display()),
                )
            })?;
        // SAFETY: flock on an open fd, no pointers.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("{} is locked by another live process: {e}", path.display()),
            ));
        }
        Ok(LivenessLock { _file: file })
    }
}

/// Whether someone holds an exclusive lock on `file` (probing with a shared one).
fn lock_held(file: &File) -> io::Result<bool> {
    // SAFETY: flock on an open fd, no pointers.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        // SAFETY: as above; drop the probe at once.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return Ok(false);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(true)
    } else {
        Err(e)
    }
}

/// Polls `fd` for readability for at most `timeout`; true if readable.
fn poll_in(fd: i32, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    loop {
        // SAFETY: `pfd` and `ts` are live for the call; one pollfd; no sigmask.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if rc >= 0 {
            return Ok(rc > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn pidfd_sees_a_killed_child_die() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let watch = PeerLiveness::pidfd(child.id()).unwrap();
        assert!(watch.is_alive().unwrap());
        assert!(!watch.wait_dead(Duration::from_millis(20)).unwrap());
        child.kill().unwrap();
        assert!(watch.wait_dead(Duration::from_secs(10)).unwrap());
        assert!(!watch.is_alive().unwrap());
        child.wait().unwrap();
    }

    #[test]
    fn a_gone_pid_is_an_error_naming_it() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let e = PeerLiveness::pidfd(pid).unwrap_err();
        assert!(e.to_string().contains(&pid.to_string()), "{e}");
    }

    #[test]
    fn lock_file_tracks_its_holder() {
        let path = std::env::temp_dir().join(format!("mkipc-live-{}", std::process::id()));
        let held = LivenessLock::hold(&path).unwrap();
        let watch = PeerLiveness::lock_file(&path).unwrap();
        assert!(watch.is_alive().unwrap());
        assert!(LivenessLock::hold(&path).is_err(), "one holder at a time");
        assert!(!watch.wait_dead(Duration::from_millis(10)).unwrap());
        drop(held);
        assert!(watch.wait_dead(Duration::from_secs(5)).unwrap());
        std::fs::remove_file(&path).unwrap();
    }
}

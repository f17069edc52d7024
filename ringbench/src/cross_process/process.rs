//! The server process: the ringbench binary re-executed with `--serve NAME`, watched
//! by a thread that reaps it, and killed on every path that does not stop it.
//!
//! The watchdog thread owns the [`Child`]. It sleeps on a pidfd (or ticks, where
//! pidfds are missing), reaps the server when it exits and publishes that in a
//! [`Watch`] the client's wait loops read; it kills the server when the client's
//! armed deadline passes (a server that stopped answering) or when the client gives
//! up. The server also gets `PR_SET_PDEATHSIG` = `SIGKILL`, so it dies with the thread
//! that started it even if this process is killed outright.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::XpError;
use super::serve::SERVE_FLAG;

/// The descriptors a server process gets: its stdin, its stdout and fd 3.
#[derive(Default)]
pub struct Handover {
    /// Becomes the server's fd 0 (`/dev/null` when absent).
    pub stdin: Option<OwnedFd>,
    /// Becomes the server's fd 1 (`/dev/null` when absent).
    pub stdout: Option<OwnedFd>,
    /// Becomes the server's fd 3 (closed when absent).
    pub fd3: Option<OwnedFd>,
}

const RUNNING: u8 = 0;
const ENDED: u8 = 1;

/// No deadline armed.
const DISARMED: u64 = u64::MAX;
/// The client gave up: kill now.
const KILL_NOW: u64 = 0;

/// How often the watchdog looks at the deadline when nothing wakes it.
const TICK: Duration = Duration::from_millis(100);

/// What the client's wait loops and the watchdog share.
pub struct Watch {
    /// [`RUNNING`] until the watchdog has reaped the server.
    state: AtomicU8,
    /// Nanoseconds after `epoch` at which a server that has not answered is killed.
    deadline_ns: AtomicU64,
    /// The limit the current deadline was armed with, for the report.
    limit_ns: AtomicU64,
    epoch: Instant,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            state: AtomicU8::new(RUNNING),
            deadline_ns: AtomicU64::new(DISARMED),
            limit_ns: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Whether the server process is still alive (not yet reaped).
    #[inline]
    pub fn server_running(&self) -> bool {
        // Acquire pairs with the watchdog's Release store after reaping.
        self.state.load(Ordering::Acquire) == RUNNING
    }

    fn arm(&self, limit: Duration) {
        let at = self.epoch.elapsed().saturating_add(limit).as_nanos();
        let at = u64::try_from(at).unwrap_or(DISARMED - 1).max(KILL_NOW + 1);
        // Relaxed: the deadline is a hint the watchdog polls; no data hangs on it.
        self.limit_ns.store(
            u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.deadline_ns.store(at, Ordering::Relaxed);
    }

    fn disarm(&self) {
        // Relaxed: see `arm`.
        self.deadline_ns.store(DISARMED, Ordering::Relaxed);
    }

    fn kill_now(&self) {
        // Relaxed: see `arm`.
        self.deadline_ns.store(KILL_NOW, Ordering::Relaxed);
    }

    /// Why the server should be killed now, if it should.
    fn expired(&self) -> Option<Kill> {
        // Relaxed: see `arm`.
        match self.deadline_ns.load(Ordering::Relaxed) {
            KILL_NOW => Some(Kill::GaveUp),
            DISARMED => None,
            at if self.epoch.elapsed().as_nanos() >= u128::from(at) => Some(Kill::Stalled(
                Duration::from_nanos(self.limit_ns.load(Ordering::Relaxed)),
            )),
            _ => None,
        }
    }
}

/// Why the watchdog killed a server.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// No reply within this limit.
    Stalled(Duration),
    /// The client gave up.
    GaveUp,
}

/// How a server process ended.
#[derive(Debug)]
pub enum ServerEnd {
    /// It exited by itself with this status.
    Exited(ExitStatus),
    /// It gave no reply within the armed limit and was killed; then it ended with
    /// the status.
    Stalled(Duration, ExitStatus),
    /// It was killed because the client gave up on it; then it ended with the
    /// status.
    Killed(ExitStatus),
    /// Waiting for it failed; it was killed.
    Lost(io::Error),
}

impl std::fmt::Display for ServerEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerEnd::Exited(s) if s.success() => write!(f, "the server process exited (0)"),
            ServerEnd::Exited(s) if s.code().is_some() => write!(
                f,
                "the server process failed with {s} (its own message is printed above)"
            ),
            ServerEnd::Exited(s) => write!(f, "the server process was ended by {s}"),
            ServerEnd::Stalled(limit, s) => write!(
                f,
                "the server process gave no reply within {limit:.1?} and was killed ({s})"
            ),
            ServerEnd::Killed(s) => write!(f, "the server process was killed ({s})"),
            ServerEnd::Lost(e) => {
                write!(
                    f,
                    "waiting for the server process failed ({e}); it was killed"
                )
            }
        }
    }
}

/// A running server process and its watchdog. Dropping it kills and reaps the
/// server.
pub struct ServerProcess {
    watch: Arc<Watch>,
    watchdog: Option<JoinHandle<ServerEnd>>,
    pid: u32,
}

impl ServerProcess {
    /// Starts `exe --serve server [--cpu N]` with `handover`'s descriptors. `wake`
    /// (a dup of the eventfd a client blocks on) is signalled when the server ends,
    /// so that a blocked client notices.
    pub fn spawn(
        exe: &Path,
        server: &str,
        cpu: Option<usize>,
        handover: Handover,
        wake: Option<File>,
    ) -> Result<ServerProcess, XpError> {
        let mut cmd = Command::new(exe);
        cmd.arg(SERVE_FLAG).arg(server);
        if let Some(cpu) = cpu {
            cmd.arg("--cpu").arg(cpu.to_string());
        }
        cmd.stdin(handover.stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(handover.stdout.map_or_else(Stdio::null, Stdio::from))
            .stderr(Stdio::inherit());
        // A fresh duplicate is numbered 3 or above (std asks for that), never one of
        // the stdio numbers the child's setup overwrites before `pre_exec` runs.
        let fd3 = handover
            .fd3
            .map(|fd| fd.try_clone())
            .transpose()
            .map_err(|e| XpError::Setup {
                what: "duplicating fd 3 for the server",
                source: e,
            })?;
        let fd3_raw = fd3.as_ref().map(AsRawFd::as_raw_fd);
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: the closure runs in the forked child before exec; it calls only
        // async-signal-safe functions (prctl, getppid, fcntl, dup2) and allocates
        // nothing (errors come from errno).
        unsafe {
            cmd.pre_exec(move || child_setup(parent, fd3_raw));
        }
        let child = cmd.spawn().map_err(XpError::Spawn)?;
        // `cmd` and `fd3` close the parent's copies of the server's ends here, so
        // that a server's exit shows as end-of-file on pipes and sockets.
        drop(cmd);
        drop(fd3);
        let pid = child.id();
        let watch = Arc::new(Watch::new());
        let watched = watch.clone();
        let watchdog = std::thread::Builder::new()
            .name(format!("ringbench-watch-{pid}"))
            .spawn(move || watchdog(child, &watched, wake));
        match watchdog {
            Ok(handle) => Ok(ServerProcess {
                watch,
                watchdog: Some(handle),
                pid,
            }),
            Err(e) => {
                // The child moved into the closure that never ran: it was dropped,
                // which does not kill; kill by pid (not reaped yet, so not reused).
                // SAFETY: kill takes a pid and a signal number, no pointers.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                Err(XpError::Setup {
                    what: "starting the watchdog thread",
                    source: e,
                })
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the client's wait loops check.
    #[inline]
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// Kills the server unless it answers within `limit` (until [`Self::disarm`]).
    pub fn arm(&self, limit: Duration) {
        self.watch.arm(limit);
    }

    /// Lets the server idle without a deadline.
    pub fn disarm(&self) {
        self.watch.disarm();
    }

    /// Waits until the server exits by itself (it was sent the stop message), for at
    /// most `limit`, then kills it; returns how it ended.
    pub fn wait_exit(&mut self, limit: Duration) -> ServerEnd {
        self.watch.arm(limit);
        self.join()
    }

    /// Kills the server (unless it already ended) and returns how it ended.
    pub fn terminate(&mut self) -> ServerEnd {
        self.watch.kill_now();
        self.join()
    }

    fn join(&mut self) -> ServerEnd {
        match self.watchdog.take() {
            Some(handle) => handle.join().unwrap_or_else(|_| {
                ServerEnd::Lost(io::Error::other("the watchdog thread panicked"))
            }),
            None => ServerEnd::Lost(io::Error::other("the server was already reaped")),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.watchdog.is_some() {
            self.terminate();
        }
    }
}

/// In the forked child: die with the parent thread, and put `fd3` at 3 (without
/// close-on-exec).
fn child_setup(parent: libc::pid_t, fd3: Option<RawFd>) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number, no pointers.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The parent may have died before the death signal was armed.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    if let Some(fd) = fd3 {
        // SAFETY: `fd` is open in the child (inherited, close-on-exec not yet
        // applied); fcntl and dup2 take integers only.
        let rc = unsafe {
            if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            }
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pidfd for `pid` (readable once the process has exited), where the kernel has
/// them.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: a non-negative result is a new descriptor nobody else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sleeps until `pidfd` is readable (the process exited) or `tick` passes.
fn sleep_on(pidfd: Option<&OwnedFd>, tick: Duration) {
    match pidfd {
        Some(fd) => {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `p` is one valid pollfd for the duration of the call.
            unsafe { libc::poll(&mut p, 1, tick.as_millis() as libc::c_int) };
        }
        None => std::thread::sleep(tick),
    }
}

/// Reaps `child`, killing it first when the watch says so; returns how it ended.
fn watchdog(mut child: Child, watch: &Watch, mut wake: Option<File>) -> ServerEnd {
    let pidfd = pidfd_open(child.id());
    let mut killed: Option<Kill> = None;
    let end = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break match killed {
                    None => ServerEnd::Exited(status),
                    Some(Kill::Stalled(limit)) => ServerEnd::Stalled(limit, status),
                    Some(Kill::GaveUp) => ServerEnd::Killed(status),
                };
            }
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break ServerEnd::Lost(e);
            }
        }
        if killed.is_none()
            && let Some(reason) = watch.expired()
        {
            // Not reaped yet, so the pid is still this child's.
            let _ = child.kill();
            killed = Some(reason);
            continue;
        }
        sleep_on(pidfd.as_ref(), TICK);
    };
    // Release pairs with the client's Acquire in `server_running`.
    watch.state.store(ENDED, Ordering::Release);
    if let Some(bell) = wake.as_mut() {
        let _ = bell.write_all(&1u64.to_ne_bytes());
    }
    end
}

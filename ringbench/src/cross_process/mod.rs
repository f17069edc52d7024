//! Cross-process round trips: the server side of each pair runs in a separate
//! process, the ringbench binary re-executed as `ringbench --serve NAME [--cpu N]`,
//! pinned to the other core; shared memory and descriptors are handed over as the
//! child's stdin, stdout and fd 3 (see DESIGN.md, "ringbench cross-process mode").
//!
//! [`XP_ALL`] lists the contenders, the floor first. The report names carry
//! [`SUFFIX`] (`floor/xp`, `mkipc-spsc/xp`, ...).

use std::fmt;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use mkipc::spsc::{ConsumeError, ProduceError};
use mkipc_sys::linux::pin_current_thread;

use crate::clock::Clock;
use crate::contenders::{SMALL, message};
use crate::harness::Cpus;

mod doorbell;
mod eventfd;
mod floor;
mod iceoryx2;
mod process;
pub mod run;
pub mod serve;
mod shared;
mod spsc;
mod stream;

pub use process::{Handover, ServerEnd, ServerProcess, Watch};
pub use serve::{SERVE_FLAG, ServeError};

/// Appended to a contender's name in reports.
pub const SUFFIX: &str = "/xp";

/// Round trips before a pair is handed out (caches warm, both cores awake).
const WARMUP: u64 = 1000;

/// A batch of round trips may take this long plus [`PER_ROUND_TRIP`] each before
/// the server is declared stalled and killed.
const DEFAULT_STALL_LIMIT: Duration = Duration::from_secs(10);

/// Allowance per round trip on top of the stall limit.
const PER_ROUND_TRIP: Duration = Duration::from_millis(1);

/// How long a stopped server may take to exit.
const EXIT_LIMIT: Duration = Duration::from_secs(5);

/// Spins between two looks at the watchdog in a polling wait.
const WATCH_EVERY: u32 = 1024;

/// What went wrong in a cross-process pair.
#[derive(Debug)]
pub enum XpError {
    /// Creating what the pair shares failed.
    Setup {
        /// What was being set up.
        what: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// The server process could not be started.
    Spawn(io::Error),
    /// The server process ended (or was killed) while the client waited for it.
    ServerGone,
    /// A byte stream or eventfd read or write failed.
    Io {
        /// Which operation.
        what: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// A word of the shared mapping was out of reach.
    Shared(mkipc::AccessError),
    /// A ring mapped in both processes did not attach.
    Attach(mkipc::spsc::RingError),
    /// Pushing a request failed other than by a full ring.
    Push(ProduceError),
    /// Popping an echo failed other than by an empty ring.
    Pop(ConsumeError),
    /// Setting up, ringing or sleeping on a doorbell failed (what, and why).
    Doorbell(String),
    /// An iceoryx2 node, service, port or transfer failed (what, and why).
    Iceoryx(String),
    /// An echo came back with other contents than the request.
    WrongEcho {
        /// The round trip's sequence number.
        seq: u64,
    },
    /// Round trip `seq` failed; the server was then stopped and ended as `server`.
    RoundTrip {
        /// The round trip's sequence number.
        seq: u64,
        /// What the client saw.
        cause: Box<XpError>,
        /// How the server process ended.
        server: ServerEnd,
    },
    /// Stopping the server failed: sending the stop message (`cause`), or the
    /// server did not exit cleanly.
    Stop {
        /// Why the stop message could not be sent, if it could not.
        cause: Option<Box<XpError>>,
        /// How the server process ended.
        server: ServerEnd,
    },
}

impl fmt::Display for XpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XpError::Setup { what, source } => write!(f, "{what}: {source}"),
            XpError::Spawn(e) => write!(f, "cannot start the server process: {e}"),
            XpError::ServerGone => write!(f, "the server process is gone"),
            XpError::Io { what, source } => write!(f, "{what}: {source}"),
            XpError::Shared(e) => write!(f, "shared memory: {e}"),
            XpError::Attach(e) => write!(f, "cannot attach the ring: {e}"),
            XpError::Push(e) => write!(f, "request ring: {e}"),
            XpError::Pop(e) => write!(f, "reply ring: {e}"),
            XpError::Doorbell(e) => write!(f, "doorbell: {e}"),
            XpError::Iceoryx(e) => write!(f, "iceoryx2: {e}"),
            XpError::WrongEcho { seq } => write!(f, "the echo of message {seq} came back wrong"),
            XpError::RoundTrip { seq, cause, server } => {
                write!(f, "round trip {seq} failed ({cause}); {server}")
            }
            XpError::Stop {
                cause: Some(cause),
                server,
            } => write!(f, "sending the stop message failed ({cause}); {server}"),
            XpError::Stop {
                cause: None,
                server,
            } => write!(f, "the server process did not stop cleanly: {server}"),
        }
    }
}

impl std::error::Error for XpError {}

/// The client (parent) side of a cross-process pair.
pub trait XpClient: 'static {
    /// One round trip carrying `seq` (non-zero); checks the echo. Waits are bounded
    /// by the server's life, which `watch` reports.
    fn round_trip(&mut self, seq: u64, watch: &Watch) -> Result<(), XpError>;
    /// Sends the server the message that makes it exit.
    fn stop(&mut self) -> Result<(), XpError>;
}

/// A client and its server process.
pub struct XpRunning<C: XpClient> {
    client: C,
    server: ServerProcess,
    next_seq: u64,
    stall_limit: Duration,
}

impl<C: XpClient> XpRunning<C> {
    /// Pairs `client` with its started `server` and warms them up.
    fn start(client: C, server: ServerProcess) -> Result<XpRunning<C>, XpError> {
        let mut running = XpRunning {
            client,
            server,
            next_seq: 1,
            stall_limit: DEFAULT_STALL_LIMIT,
        };
        running.time(WARMUP)?;
        Ok(running)
    }

    /// Total wall time of `iters` back-to-back round trips.
    pub fn time(&mut self, iters: u64) -> Result<Duration, XpError> {
        self.arm(iters);
        let start = Instant::now();
        for _ in 0..iters {
            self.one()?;
        }
        let elapsed = start.elapsed();
        self.server.disarm();
        Ok(elapsed)
    }

    /// Nanoseconds of each of `n` round trips (clock overhead subtracted).
    pub fn sample(&mut self, n: usize, clock: &Clock) -> Result<Vec<f64>, XpError> {
        let overhead = clock.overhead_ticks();
        let mut ticks = Vec::with_capacity(n);
        self.arm(n as u64);
        let mut last = clock.now();
        for _ in 0..n {
            self.one()?;
            let now = clock.now();
            ticks.push(now - last);
            last = now;
        }
        self.server.disarm();
        Ok(ticks
            .into_iter()
            .map(|t| clock.to_ns(t.saturating_sub(overhead)))
            .collect())
    }

    /// Stops the server and checks that it exited cleanly.
    pub fn finish(mut self) -> Result<(), XpError> {
        // Bounds the stop message's own wait too (a full request ring).
        self.server.arm(EXIT_LIMIT);
        if let Err(e) = self.client.stop() {
            return Err(XpError::Stop {
                cause: Some(Box::new(e)),
                server: self.server.terminate(),
            });
        }
        match self.server.wait_exit(EXIT_LIMIT) {
            ServerEnd::Exited(s) if s.success() => Ok(()),
            server => Err(XpError::Stop {
                cause: None,
                server,
            }),
        }
    }

    #[inline]
    fn one(&mut self) -> Result<(), XpError> {
        match self.client.round_trip(self.next_seq, self.server.watch()) {
            Ok(()) => {
                self.next_seq += 1;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn arm(&self, round_trips: u64) {
        let allowance =
            PER_ROUND_TRIP.saturating_mul(u32::try_from(round_trips).unwrap_or(u32::MAX));
        self.server.arm(self.stall_limit.saturating_add(allowance));
    }

    /// Ends the server and says what happened.
    fn fail(&mut self, cause: XpError) -> XpError {
        XpError::RoundTrip {
            seq: self.next_seq,
            cause: Box::new(cause),
            server: self.server.terminate(),
        }
    }
}

/// A running cross-process pair behind one interface, so that contenders of
/// different types sit in one table ([`XP_ALL`]).
pub trait XpEchoing {
    /// See [`XpRunning::time`].
    fn time(&mut self, iters: u64) -> Result<Duration, XpError>;
    /// See [`XpRunning::sample`].
    fn sample(&mut self, n: usize, clock: &Clock) -> Result<Vec<f64>, XpError>;
    /// See [`XpRunning::finish`].
    fn finish(self: Box<Self>) -> Result<(), XpError>;
    /// The server's process id.
    fn server_pid(&self) -> u32;
    /// Kills the server when a batch of round trips takes longer than `limit` plus
    /// 1 ms per round trip (default 10 s).
    fn set_stall_limit(&mut self, limit: Duration);
}

impl<C: XpClient> XpEchoing for XpRunning<C> {
    fn time(&mut self, iters: u64) -> Result<Duration, XpError> {
        XpRunning::time(self, iters)
    }

    fn sample(&mut self, n: usize, clock: &Clock) -> Result<Vec<f64>, XpError> {
        XpRunning::sample(self, n, clock)
    }

    fn finish(self: Box<Self>) -> Result<(), XpError> {
        XpRunning::finish(*self)
    }

    fn server_pid(&self) -> u32 {
        self.server.pid()
    }

    fn set_stall_limit(&mut self, limit: Duration) {
        self.stall_limit = limit;
    }
}

/// Starts the server `name` from `exe` with `handover` (pinned to `cpus.server`,
/// this thread to `cpus.client`, when given), pairs it with `client` and warms up.
fn launch<C: XpClient>(
    exe: &Path,
    name: &str,
    cpus: Option<Cpus>,
    handover: Handover,
    wake: Option<std::fs::File>,
    client: C,
) -> Result<Box<dyn XpEchoing>, XpError> {
    if let Some(cpus) = cpus {
        pin_current_thread(cpus.client).map_err(|source| XpError::Setup {
            what: "pinning the client thread",
            source,
        })?;
    }
    let server = ServerProcess::spawn(exe, name, cpus.map(|c| c.server), handover, wake)?;
    Ok(Box::new(XpRunning::start(client, server)?))
}

/// Spins until `poll` yields, looking at the watchdog every [`WATCH_EVERY`] spins.
#[inline(always)]
fn spin_until<T>(
    watch: &Watch,
    mut poll: impl FnMut() -> Result<Option<T>, XpError>,
) -> Result<T, XpError> {
    let mut spins: u32 = 0;
    loop {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(WATCH_EVERY) && !watch.server_running() {
            return Err(XpError::ServerGone);
        }
        std::hint::spin_loop();
    }
}

/// Checks that an echo holds `seq` in every word.
#[inline]
fn check_echo(buf: &[u8], seq: u64) -> Result<(), XpError> {
    if buf == message::<SMALL>(seq) {
        Ok(())
    } else {
        Err(XpError::WrongEcho { seq })
    }
}

/// A started pair, or why it did not start.
pub type Started = Result<Box<dyn XpEchoing>, XpError>;

/// One cross-process contender.
#[derive(Debug)]
pub struct XpContender {
    /// Name in tables, JSON and plots (`server` + [`SUFFIX`]).
    pub name: &'static str,
    /// The name `--serve` takes (the in-process contender it mirrors).
    pub server: &'static str,
    /// Starts the server process from `exe` (pinned when given [`Cpus`]) and warms
    /// the pair up.
    pub start: fn(&Path, Option<Cpus>) -> Started,
    /// The server side, run in the child by `--serve`.
    pub serve: fn() -> Result<(), ServeError>,
}

/// Every cross-process contender, the floor first.
pub static XP_ALL: &[XpContender] = &[
    XpContender {
        name: "floor/xp",
        server: "floor",
        start: floor::start,
        serve: floor::serve,
    },
    XpContender {
        name: "mkipc-spsc/xp",
        server: "mkipc-spsc",
        start: spsc::start,
        serve: spsc::serve,
    },
    XpContender {
        name: "eventfd/xp",
        server: "eventfd",
        start: eventfd::start,
        serve: eventfd::serve,
    },
    XpContender {
        name: "pipe/xp",
        server: "pipe",
        start: stream::start_pipe,
        serve: stream::serve_pipe,
    },
    XpContender {
        name: "uds/xp",
        server: "uds",
        start: stream::start_uds,
        serve: stream::serve_uds,
    },
    XpContender {
        name: "mkipc-spsc-futex/xp",
        server: "mkipc-spsc-futex",
        start: doorbell::start_futex,
        serve: doorbell::serve_futex,
    },
    XpContender {
        name: "mkipc-spsc-eventfd/xp",
        server: "mkipc-spsc-eventfd",
        start: doorbell::start_eventfd,
        serve: doorbell::serve_eventfd,
    },
    XpContender {
        name: "mkipc-spsc-futex-spin/xp",
        server: "mkipc-spsc-futex-spin",
        start: doorbell::start_futex_spin,
        serve: doorbell::serve_futex_spin,
    },
    XpContender {
        name: "iceoryx2/xp",
        server: "iceoryx2",
        start: iceoryx2::start,
        serve: iceoryx2::serve,
    },
];

/// The cross-process contender called `name`, by report name (`pipe/xp`) or
/// server name (`pipe`).
pub fn find(name: &str) -> Option<&'static XpContender> {
    XP_ALL.iter().find(|c| c.name == name || c.server == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_suffix_and_are_unique() {
        assert_eq!(XP_ALL[0].server, "floor");
        for (i, c) in XP_ALL.iter().enumerate() {
            assert_eq!(c.name, format!("{}{SUFFIX}", c.server));
            assert!(XP_ALL[..i].iter().all(|d| d.server != c.server));
            assert!(std::ptr::eq(find(c.name).unwrap(), c));
            assert!(std::ptr::eq(find(c.server).unwrap(), c));
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn echo_check_reads_every_word() {
        let m = message::<SMALL>(5);
        assert!(check_echo(&m, 5).is_ok());
        assert!(matches!(
            check_echo(&m, 6),
            Err(XpError::WrongEcho { seq: 6 })
        ));
        let mut torn = m;
        torn[SMALL - 1] ^= 1;
        assert!(check_echo(&torn, 5).is_err());
        assert!(check_echo(&m[..8], 5).is_err());
    }
}

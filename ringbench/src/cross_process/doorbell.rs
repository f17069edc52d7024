//! mkipc SPSC with doorbells across processes: the blocking round trip of the
//! in-process `mkipc-spsc-futex`, `mkipc-spsc-eventfd` and `mkipc-spsc-futex-spin`
//! contenders, with the server in its own process.
//!
//! A memfd both processes map holds the request ring at 0, the reply ring after
//! it, and after both the two futex words, each on its own 128-byte line (the
//! request doorbell, rung by the client, then the reply doorbell). Each side
//! publishes, rings the peer only if it announced a sleep (need-wakeup protocol),
//! and waits for its own message with spin-then-sleep (spin budget 0: sleep at
//! once; `-spin`: mkipc's default budget).
//!
//! Doorbells: the futex backend sleeps on the words in the shared mapping (a
//! shared futex, keyed by the memfd's page, so the two mappings meet). The eventfd
//! backend uses one non-blocking eventfd per direction, inherited by the server.
//!
//! Handover: the memfd as the server's stdin; for eventfds also the request
//! eventfd as its stdout and the reply eventfd as its fd 3 (as `eventfd/xp`).
//!
//! Every sleep is bounded by [`SLICE`]: a client whose sleep ends without a reply
//! asks the watchdog whether the server lives, a server asks whether its parent
//! lives, and each gives up when not.

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use mkipc::Region;
use mkipc::doorbell::{
    BlockingConsumer, DEFAULT_SPIN_BUDGET, Doorbell, NotifyingProducer, RecvError, SendError,
    SpinPolicy, Waiter,
};
use mkipc::spsc::{Geometry, ProduceError, RingLayout};
use mkipc_sys::linux::{EventFd, FutexDoorbell, FutexWaiter};

use super::serve::{self, ServeError};
use super::shared::{self, FdKind};
use super::{Handover, Watch, XpClient, XpEchoing, XpError, check_echo, launch, spin_until};
use crate::contenders::{RTT_CAPACITY, SMALL, message};
use crate::harness::Cpus;

/// The in-process doorbell contenders' geometry: 48 payload bytes, [`RTT_CAPACITY`]
/// slots.
const GEOMETRY: Geometry = Geometry::new(RTT_CAPACITY as u32, 48);

/// The longest single sleep; then the sleeper checks that its peer still lives.
/// Costs nothing while messages flow (a sleep's timer is armed either way).
const SLICE: Duration = Duration::from_millis(100);

/// Where things sit in the shared memfd.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// The reply ring's offset (the request ring is at 0).
    reply_ring: usize,
    /// The request doorbell's futex word (rung by the client).
    request_word: usize,
    /// The reply doorbell's futex word (rung by the server).
    reply_word: usize,
    /// Bytes of the memfd.
    len: usize,
}

impl Layout {
    fn new() -> Layout {
        let ring = GEOMETRY
            .ring_size()
            .expect("the round-trip geometry is valid");
        Layout {
            reply_ring: ring,
            request_word: 2 * ring,
            reply_word: 2 * ring + 128,
            len: 2 * ring + 256,
        }
    }
}

/// A doorbell kind, as each process sets up its side of it.
trait Backend: 'static {
    /// The ringing side.
    type Bell: Doorbell;
    /// The sleeping side.
    type Wait: Waiter;
    /// The client's request doorbell and reply waiter, and what the server needs
    /// of them besides the shared memfd (its stdout and fd 3).
    fn client(region: &Region, layout: &Layout) -> Result<Ends<Self>, XpError>;
    /// The server's reply doorbell and request waiter, from the region and the
    /// descriptors it was handed.
    fn server(region: &Region, layout: &Layout) -> Result<(Self::Bell, Self::Wait), ServeError>;
}

/// One side's doorbell ends, and the descriptors to hand to the server.
struct Ends<B: Backend + ?Sized> {
    bell: B::Bell,
    wait: B::Wait,
    stdout: Option<OwnedFd>,
    fd3: Option<OwnedFd>,
}

/// A shared futex on each of the two words.
struct Futex;

fn futex_error(what: &'static str) -> impl Fn(mkipc_sys::linux::FutexError) -> String {
    move |e| format!("{what}: {e}")
}

impl Backend for Futex {
    type Bell = FutexDoorbell;
    type Wait = FutexWaiter;

    fn client(region: &Region, layout: &Layout) -> Result<Ends<Futex>, XpError> {
        let setup = |what| move |e| XpError::Doorbell(futex_error(what)(e));
        Ok(Ends {
            bell: FutexDoorbell::new(region.clone(), layout.request_word)
                .map_err(setup("the request futex"))?,
            wait: FutexWaiter::new(region.clone(), layout.reply_word)
                .map_err(setup("the reply futex"))?,
            stdout: None,
            fd3: None,
        })
    }

    fn server(
        region: &Region,
        layout: &Layout,
    ) -> Result<(FutexDoorbell, FutexWaiter), ServeError> {
        let failed = |what| move |e| ServeError::Failed(futex_error(what)(e));
        Ok((
            FutexDoorbell::new(region.clone(), layout.reply_word)
                .map_err(failed("the reply futex"))?,
            FutexWaiter::new(region.clone(), layout.request_word)
                .map_err(failed("the request futex"))?,
        ))
    }
}

/// One non-blocking eventfd per direction.
struct Eventfd;

impl Backend for Eventfd {
    type Bell = EventFd;
    type Wait = EventFd;

    fn client(_: &Region, _: &Layout) -> Result<Ends<Eventfd>, XpError> {
        let setup = |what| move |source| XpError::Setup { what, source };
        let request = EventFd::new().map_err(setup("creating the request eventfd"))?;
        let reply = EventFd::new().map_err(setup("creating the reply eventfd"))?;
        Ok(Ends {
            stdout: Some(shared::dup(&request, "duplicating the request eventfd")?),
            fd3: Some(shared::dup(&reply, "duplicating the reply eventfd")?),
            bell: request,
            wait: reply,
        })
    }

    fn server(_: &Region, _: &Layout) -> Result<(EventFd, EventFd), ServeError> {
        let request = handed_eventfd(1, "the request eventfd")?;
        let reply = handed_eventfd(3, "the reply eventfd")?;
        Ok((reply, request))
    }
}

/// Takes the handed eventfd `fd`, which must be non-blocking ([`EventFd`] drains
/// it without blocking).
fn handed_eventfd(fd: i32, role: &'static str) -> Result<EventFd, ServeError> {
    let file = shared::take_fd(fd, FdKind::EventFd, role)?;
    // SAFETY: F_GETFL reads the open file's status flags; `file` keeps fd open.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || flags & libc::O_NONBLOCK == 0 {
        return Err(ServeError::Handover {
            fd,
            role,
            expected: "a non-blocking eventfd",
            found: "a blocking eventfd".into(),
        });
    }
    Ok(EventFd::from_fd(OwnedFd::from(file)))
}

/// Sends on the request ring and rings the server; sleeps on the reply ring.
struct DoorbellClient<B: Backend> {
    tx: NotifyingProducer<B::Bell>,
    rx: BlockingConsumer<B::Wait>,
}

fn doorbell_error(what: &'static str, e: impl fmt::Display) -> XpError {
    XpError::Doorbell(format!("{what}: {e}"))
}

/// A failed request: the ring refused it, or the server's doorbell failed.
fn send_error<E: fmt::Display>(e: SendError<E>) -> XpError {
    match e {
        SendError::Produce(e) => XpError::Push(e),
        SendError::Doorbell(e) => doorbell_error("ringing the server", e),
    }
}

impl<B: Backend> DoorbellClient<B> {
    #[inline]
    fn send(&mut self, msg: &[u8], watch: &Watch) -> Result<(), XpError> {
        spin_until(watch, || match self.tx.push(msg) {
            Ok(()) => Ok(Some(())),
            Err(SendError::Produce(ProduceError::Full)) => Ok(None),
            Err(e) => Err(send_error(e)),
        })
    }
}

impl<B: Backend> XpClient for DoorbellClient<B> {
    #[inline]
    fn round_trip(&mut self, seq: u64, watch: &Watch) -> Result<(), XpError> {
        self.send(&message::<SMALL>(seq), watch)?;
        let mut buf = [0u8; SMALL];
        loop {
            match self.rx.recv(&mut buf, SLICE) {
                Ok(n) => return check_echo(&buf[..n], seq),
                Err(RecvError::TimedOut) if watch.server_running() => {}
                Err(RecvError::TimedOut) => return Err(XpError::ServerGone),
                Err(RecvError::Consume(e)) => return Err(XpError::Pop(e)),
                Err(RecvError::Waiter(e)) => {
                    return Err(doorbell_error("sleeping on the reply doorbell", e));
                }
            }
        }
    }

    fn stop(&mut self) -> Result<(), XpError> {
        // The stop message: empty (echoes are never empty). The ring holds one
        // message at most between round trips, so it has room.
        self.tx.push(&[]).map_err(send_error)
    }
}

/// Creates both rings in a fresh memfd, the doorbells of `B`, starts the server
/// process `name` and its client, whose receiver polls `spins` times before
/// sleeping.
fn start<B: Backend>(
    exe: &Path,
    cpus: Option<Cpus>,
    name: &str,
    spins: u32,
) -> Result<Box<dyn XpEchoing>, XpError> {
    let layout = Layout::new();
    let (file, region) = shared::shared_memory(layout.len)?;
    RingLayout::create(&region, 0, GEOMETRY).map_err(XpError::Attach)?;
    RingLayout::create(&region, layout.reply_ring, GEOMETRY).map_err(XpError::Attach)?;
    let ends = B::client(&region, &layout)?;
    let client = DoorbellClient::<B> {
        tx: NotifyingProducer::attach(region.clone(), 0, ends.bell).map_err(XpError::Attach)?,
        rx: BlockingConsumer::attach(region, layout.reply_ring, ends.wait, SpinPolicy::new(spins))
            .map_err(XpError::Attach)?,
    };
    let handover = Handover {
        stdin: Some(OwnedFd::from(file)),
        stdout: ends.stdout,
        fd3: ends.fd3,
    };
    launch(exe, name, cpus, handover, None, client)
}

/// The server: attaches to both rings with the handed doorbells and echoes until
/// the empty stop message, its receiver polling `spins` times before sleeping.
fn serve<B: Backend>(spins: u32) -> Result<(), ServeError> {
    let file = shared::take_fd(0, FdKind::SharedMemory, "the region holding both rings")?;
    let region = shared::map_handed(&file)?;
    let layout = Layout::new();
    let (bell, wait) = B::server(&region, &layout)?;
    let mut rx = BlockingConsumer::attach(region.clone(), 0, wait, SpinPolicy::new(spins))
        .map_err(|e| ServeError::Failed(format!("cannot attach the request ring: {e}")))?;
    let mut tx = NotifyingProducer::attach(region, layout.reply_ring, bell)
        .map_err(|e| ServeError::Failed(format!("cannot attach the reply ring: {e}")))?;
    let mut buf = [0u8; SMALL];
    loop {
        let n = match rx.recv(&mut buf, SLICE) {
            Ok(n) => n,
            Err(RecvError::TimedOut) if serve::parent_alive() => continue,
            Err(RecvError::TimedOut) => {
                return Err(ServeError::Failed(
                    "the client process is gone; giving up".into(),
                ));
            }
            Err(e) => return Err(ServeError::Failed(format!("request ring: {e}"))),
        };
        if n == 0 {
            return Ok(());
        }
        serve::spin_until(|| match tx.push(&buf[..n]) {
            Ok(()) => Ok(Some(())),
            Err(SendError::Produce(ProduceError::Full)) => Ok(None),
            Err(e) => Err(ServeError::Failed(format!("reply ring: {e}"))),
        })?;
    }
}

/// `mkipc-spsc-futex/xp`: shared futexes, sleep at once.
pub fn start_futex(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    start::<Futex>(exe, cpus, "mkipc-spsc-futex", 0)
}

/// The server of `mkipc-spsc-futex/xp`.
pub fn serve_futex() -> Result<(), ServeError> {
    serve::<Futex>(0)
}

/// `mkipc-spsc-eventfd/xp`: inherited eventfds, sleep at once.
pub fn start_eventfd(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    start::<Eventfd>(exe, cpus, "mkipc-spsc-eventfd", 0)
}

/// The server of `mkipc-spsc-eventfd/xp`.
pub fn serve_eventfd() -> Result<(), ServeError> {
    serve::<Eventfd>(0)
}

/// `mkipc-spsc-futex-spin/xp`: shared futexes, mkipc's default spin budget first.
pub fn start_futex_spin(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    start::<Futex>(exe, cpus, "mkipc-spsc-futex-spin", DEFAULT_SPIN_BUDGET)
}

/// The server of `mkipc-spsc-futex-spin/xp`.
pub fn serve_futex_spin() -> Result<(), ServeError> {
    serve::<Futex>(DEFAULT_SPIN_BUDGET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keeps_rings_and_words_apart() {
        let l = Layout::new();
        let ring = GEOMETRY.ring_size().unwrap();
        assert_eq!(l.reply_ring, ring);
        assert!(l.request_word >= 2 * ring);
        assert_eq!(l.reply_word - l.request_word, 128);
        assert_eq!(l.request_word % 128, 0, "own line");
        assert!(l.reply_word + 8 <= l.len);
    }
}

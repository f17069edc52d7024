//! `mkipc recv`: print a channel's messages; with `--count`, verify generated ones.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use mkipc::doorbell::{Sleeper, SpinPolicy, WaitError, WakeFlag};
use mkipc::handshake::{ConnectError, Hello, Receiver, ReclaimError, RecvError};
use mkipc::lifecycle::{LocalNode, PeerStatus, Watchdog};
use mkipc::manifest::Manifest;
use mkipc::spsc::ConsumeError;
use mkipc_sys::linux::FutexWaiter;

use crate::endpoint::{EndArgs, connect_failure, liveness_failure};
use crate::failure::{CliResult, Failure};
use crate::live::{Alive, LockFence, Millis};
use crate::message;
use crate::regionfile::{Role, lock_path, open_end};

/// Options of `mkipc recv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvArgs {
    /// Channel, count, timeouts.
    pub end: EndArgs,
    /// Print only the summary, not every message.
    pub quiet: bool,
}

/// Longest sleep while connected: the sender's liveness is checked this often
/// when no message comes.
const TICK: Duration = Duration::from_millis(100);
/// Longest sleep while no sender is connected (an offer rings no doorbell).
const LISTEN_TICK: Duration = Duration::from_millis(10);

/// What a finished `recv` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvSummary {
    /// Messages received.
    pub received: u64,
    /// Ring position after the last one.
    pub position: u64,
}

/// Runs `mkipc recv` on the region at `path`, writing messages to `out`.
///
/// Ends with `Ok` when `--count` messages arrived or the sender closed the
/// channel; with a peer failure (exit 4) when the sender died, after receiving
/// every message it committed and resetting the channel for its next start.
pub fn run(path: &Path, args: &RecvArgs, out: &mut impl Write) -> CliResult<RecvSummary> {
    let channel = args.end.channel.as_str();
    let end = open_end(path, channel, Role::Receiver)?;
    let alive = Alive::boot(
        &end.manifest,
        &end.own,
        &lock_path(path, end.own.name.as_str()),
        &format!("receiver of channel {channel:?}"),
    )?;
    let hello = Hello::new(end.channel.message_type);
    let rx = Receiver::open(&end.manifest, alive.node(), channel, hello)
        .map_err(|e| connect_failure(channel, e))?;
    let flag = WakeFlag::new(end.region.clone(), end.ring.need_wakeup_word())
        .map_err(|e| Failure::corrupt(format!("the wake-up word: {e}")))?;
    let waiter = FutexWaiter::new(end.region.clone(), end.ring.tail_word())
        .map_err(|e| Failure::other(format!("cannot set up the doorbell: {e}")))?;
    let clock = Millis::start();
    let dead = args.end.dead_after.as_millis() as u64;
    let watchdog = Watchdog::new(&end.manifest, end.peer.id, dead, clock.now())
        .map_err(|e| liveness_failure(end.peer.name.as_str(), e))?;
    let mut inbox = Inbox {
        rx,
        reopen: (end.manifest.clone(), alive.node().clone(), hello),
        accepted_at: 0,
        buf: vec![0u8; end.ring.slot_size()],
        args,
        out,
        received: 0,
        position: 0,
    };
    let mut sleeper = Sleeper::new(flag, waiter, SpinPolicy::default());
    let mut fence = LockFence::new(lock_path(path, end.peer.name.as_str()));
    let mut watchdog = watchdog;
    let peer = end.peer.name.as_str().to_string();
    let mut idle_since = clock.now();
    let result = loop {
        if inbox.done() {
            break Ok(());
        }
        let mut pending = None;
        match inbox.next() {
            Ok(Step::Pending(old)) => pending = Some(old),
            Ok(Step::Got) => {
                idle_since = clock.now();
                continue;
            }
            Ok(Step::Closed) => {
                // Without --count, a sender that closed after sending us something
                // ends the run. Otherwise (a count to reach, or a leftover closed
                // incarnation that sent us nothing) listen for the next sender.
                if args.end.count.is_none() && inbox.received > inbox.accepted_at {
                    break Ok(());
                }
                if let Err(f) = inbox.reopen() {
                    break Err(f);
                }
                continue;
            }
            Ok(Step::Idle) => {}
            Err(f) => break Err(f),
        }
        inbox.flush()?;
        let now = clock.now();
        let status = match watchdog.observe(now) {
            Ok(s) => s,
            Err(e) => break Err(liveness_failure(&peer, e)),
        };
        if let Some(old) = pending.filter(|&old| watchdog.is_gone(old)) {
            // The sender restarted while no receiver ran: take what its previous
            // incarnation committed, reset, then accept the new one.
            match inbox.drain_and_reclaim(&watchdog, old) {
                Err(f) => break Err(f),
                Ok(Some(_)) => continue,
                Ok(None) => {}
            }
        }
        match status {
            PeerStatus::Dead { epoch } | PeerStatus::Fenced { epoch } => {
                if let PeerStatus::Fenced { .. } = watchdog.fence(&mut fence) {
                    break inbox.reclaim_dead(&watchdog, epoch, dead);
                }
                if now.saturating_sub(idle_since) >= args.end.timeout.as_millis() as u64 {
                    break Err(Failure::peer(format!(
                        "the sender of channel {channel:?} (epoch {epoch}) stopped beating \
                         {dead} ms ago but its process still holds {}: it is stalled, not \
                         dead; nothing was reclaimed",
                        fence.path().display()
                    )));
                }
            }
            PeerStatus::Restarted { old, .. } => {
                // A new sender incarnation started before we saw the old one die:
                // take what the old one committed, reset, and accept the new one.
                if let Err(f) = inbox.drain_and_reclaim(&watchdog, old) {
                    break Err(f);
                }
                continue;
            }
            PeerStatus::NotBooted | PeerStatus::Stopped { .. } | PeerStatus::Alive { .. } => {
                let alive = matches!(status, PeerStatus::Alive { .. });
                if !alive && now.saturating_sub(idle_since) >= args.end.timeout.as_millis() as u64 {
                    break Err(inbox.no_sender(args.end.timeout));
                }
            }
        }
        let tick = if inbox.rx.agreement().is_some() {
            TICK
        } else {
            LISTEN_TICK
        };
        let rx = &mut inbox.rx;
        match sleeper.wait_until(|| has_message(rx), tick) {
            Ok(()) | Err(WaitError::TimedOut) => {}
            Err(WaitError::Check(e)) => {
                break Err(Failure::corrupt(format!(
                    "the sender corrupted channel {channel:?}: {e}"
                )));
            }
            Err(WaitError::Waiter(e)) => {
                break Err(Failure::other(format!(
                    "waiting for the doorbell failed: {e}"
                )));
            }
        }
    };
    inbox.flush()?;
    match result {
        Ok(()) => {
            let _ = inbox.rx.close();
            alive.stop();
            Ok(inbox.summary())
        }
        Err(f) => Err(f),
    }
}

/// Whether a message is waiting (false while no sender is connected).
fn has_message(rx: &mut Receiver) -> Result<bool, ConsumeError> {
    match rx.consumer() {
        Some(c) => match c.peek(1) {
            Ok(_) => Ok(true),
            Err(ConsumeError::Empty) => Ok(false),
            Err(e) => Err(e),
        },
        None => Ok(false),
    }
}

/// What one receive attempt found.
enum Step {
    /// A message, delivered.
    Got,
    /// Nothing now.
    Idle,
    /// The sender closed the channel and everything was received.
    Closed,
    /// A new sender offers, but the channel holds incarnation `.0`'s state.
    Pending(u64),
}

/// The receiving end and where its messages go.
struct Inbox<'a, W: Write> {
    rx: Receiver,
    /// What it takes to open the channel again after a sender closed it.
    reopen: (Manifest, LocalNode, Hello),
    /// `received` when the current sender was accepted.
    accepted_at: u64,
    buf: Vec<u8>,
    args: &'a RecvArgs,
    out: &'a mut W,
    received: u64,
    position: u64,
}

impl<W: Write> Inbox<'_, W> {
    fn done(&self) -> bool {
        self.args.end.count.is_some_and(|n| self.received >= n)
    }

    fn channel(&self) -> &str {
        &self.args.end.channel
    }

    fn summary(&self) -> RecvSummary {
        RecvSummary {
            received: self.received,
            position: self.position,
        }
    }

    fn flush(&mut self) -> CliResult {
        self.out
            .flush()
            .map_err(|e| Failure::other(format!("cannot write the output: {e}")))
    }

    /// Receives one message if there is one, accepting a sender's offer first.
    fn next(&mut self) -> CliResult<Step> {
        let position = self.rx.consumer().map(|c| c.released());
        match self.rx.recv(&mut self.buf) {
            Ok(len) => {
                self.deliver(position.unwrap_or(0), len)?;
                Ok(Step::Got)
            }
            Err(RecvError::Empty) => Ok(Step::Idle),
            Err(RecvError::Closed) => Ok(Step::Closed),
            Err(RecvError::Ring(e)) => Err(Failure::corrupt(format!(
                "the sender corrupted channel {:?}: {e}",
                self.channel()
            ))),
            Err(RecvError::NotConnected) => match self.rx.try_accept() {
                Ok(_) => {
                    self.accepted_at = self.received;
                    Ok(Step::Got)
                }
                Err(ConnectError::NoOffer) => Ok(Step::Idle),
                // An offer from an incarnation that is no longer running: its state
                // may still need reclaiming once the watchdog agrees it is gone.
                Err(ConnectError::StaleEpoch { found, current }) if found < current => {
                    Ok(Step::Pending(found))
                }
                Err(ConnectError::StaleEpoch { .. }) => Ok(Step::Idle),
                // The channel holds a previous sender incarnation's state: the
                // watchdog decides when it may be reclaimed.
                Err(ConnectError::ReclaimPending { old_epoch }) => Ok(Step::Pending(old_epoch)),
                Err(ConnectError::PeerClosed) => Ok(Step::Closed),
                Err(e) => Err(connect_failure(self.channel(), e)),
            },
        }
    }

    /// Prints (and with `--count` verifies) the message at ring `position`.
    fn deliver(&mut self, position: u64, len: usize) -> CliResult {
        let msg = &self.buf[..len];
        let written = if self.args.end.count.is_some() {
            message::verify(position, msg).map_err(|bad| {
                Failure::corrupt(format!(
                    "channel {:?}, message at position {position}: {bad}",
                    self.args.end.channel
                ))
            })?;
            if self.args.quiet {
                Ok(())
            } else {
                writeln!(self.out, "{position} {len}")
            }
        } else if self.args.quiet {
            Ok(())
        } else {
            self.out
                .write_all(msg)
                .and_then(|()| self.out.write_all(b"\n"))
        };
        written.map_err(|e| Failure::other(format!("cannot write the output: {e}")))?;
        self.received += 1;
        self.position = position + 1;
        Ok(())
    }

    /// Listens again after a sender closed the channel (and it was reset).
    fn reopen(&mut self) -> CliResult {
        let (manifest, node, hello) = &self.reopen;
        self.rx = Receiver::open(manifest, node, &self.args.end.channel, *hello)
            .map_err(|e| connect_failure(&self.args.end.channel, e))?;
        Ok(())
    }

    /// No live sender for the whole timeout.
    fn no_sender(&self, timeout: Duration) -> Failure {
        let got = match self.args.end.count {
            Some(n) => format!("{} of {n} message(s)", self.received),
            None => format!("{} message(s)", self.received),
        };
        Failure::peer(format!(
            "no live sender on channel {:?} for {} s (received {got}); start `mkipc send`, or \
             pass a longer --timeout",
            self.channel(),
            timeout.as_secs()
        ))
    }

    /// Receives everything the gone incarnation `epoch` committed, then resets
    /// the channel; returns the position its successor resumes at, or `None` when
    /// the channel holds nothing of a gone incarnation (the running one is live).
    fn drain_and_reclaim(&mut self, watchdog: &Watchdog, epoch: u64) -> CliResult<Option<u64>> {
        loop {
            match self.rx.reclaim(watchdog) {
                Ok(resume) => return Ok(Some(resume)),
                Err(ReclaimError::NotDrained) => loop {
                    if self.done() {
                        return Ok(None);
                    }
                    let position = self.rx.consumer().map(|c| c.released());
                    match self.rx.recv(&mut self.buf) {
                        Ok(len) => self.deliver(position.unwrap_or(0), len)?,
                        // A dead sender's torn writes: reclaim erases them.
                        Err(_) => break,
                    }
                },
                Err(ReclaimError::NothingToReclaim | ReclaimError::NotGone { .. }) => {
                    return Ok(None);
                }
                Err(e) => {
                    return Err(Failure::other(format!(
                        "cannot reclaim channel {:?} from sender epoch {epoch}: {e}",
                        self.channel()
                    )));
                }
            }
        }
    }

    /// The sender died: keep its committed messages, reset, report (exit 4).
    fn reclaim_dead(&mut self, watchdog: &Watchdog, epoch: u64, dead_ms: u64) -> CliResult {
        let resume = self.drain_and_reclaim(watchdog, epoch)?;
        self.flush()?;
        if self.done() {
            return Ok(());
        }
        let reset = match resume {
            Some(p) => format!(
                "the channel is reset at position {p}, where a restarted `mkipc send` continues"
            ),
            None => "there was nothing to reset".into(),
        };
        Err(Failure::peer(format!(
            "the sender of channel {:?} (epoch {epoch}) died: no heartbeat for {dead_ms} ms and \
             its process is gone; received {} message(s), every one it committed; {reset}",
            self.channel(),
            self.received
        )))
    }
}

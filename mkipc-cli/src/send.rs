//! `mkipc send`: stdin lines, or generated messages, into a channel.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use mkipc::doorbell::Notifier;
use mkipc::handshake::{ConnectError, Hello, LinkStatus, SendError, Sender};
use mkipc::lifecycle::{PeerStatus, Watchdog};
use mkipc::spsc::ProduceError;
use mkipc_sys::linux::FutexWake;

use crate::endpoint::{EndArgs, connect_failure, liveness_failure};
use crate::failure::{CliResult, Failure};
use crate::live::{Alive, Millis};
use crate::message;
use crate::regionfile::{EndMapping, Role, lock_path, open_end};

/// Options of `mkipc send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendArgs {
    /// Channel, count, timeouts.
    pub end: EndArgs,
    /// At most this many messages per second (generated messages only).
    pub rate: Option<u64>,
}

/// What a finished `send` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendSummary {
    /// Messages sent.
    pub sent: u64,
    /// Ring position of the first one.
    pub first: u64,
    /// This sender's epoch.
    pub epoch: u64,
}

/// Polls the receiver's connect words every this many messages.
const POLL_EVERY: u64 = 256;

/// Runs `mkipc send` on the region at `path`, reading lines from `input` unless
/// `--count` asks for generated messages.
pub fn run(path: &Path, args: &SendArgs, input: impl BufRead) -> CliResult<SendSummary> {
    let channel = args.end.channel.as_str();
    let end = open_end(path, channel, Role::Sender)?;
    let max_len = (end.channel.max_message as usize).min(end.ring.slot_size());
    if args.end.count.is_some() && max_len < message::MIN_LEN {
        return Err(Failure::usage(format!(
            "--count needs slots of at least {} bytes, channel {channel:?} has {max_len}; \
             recreate it with a larger --slot-size",
            message::MIN_LEN
        )));
    }
    let alive = Alive::boot(
        &end.manifest,
        &end.own,
        &lock_path(path, end.own.name.as_str()),
        &format!("sender of channel {channel:?}"),
    )?;
    let clock = Millis::start();
    let mut out = Out::connect(&end, &alive, args, &clock)?;
    let first = out.sender.producer().published();
    let mut buf = vec![0u8; max_len];
    let mut sent = 0u64;
    let started = Instant::now();
    match args.end.count {
        Some(count) => {
            for _ in 0..count {
                let seq = out.sender.producer().published();
                let len = message::encode(seq, max_len, &mut buf)
                    .ok_or_else(|| Failure::other("message buffer too small"))?;
                out.send(&buf[..len], sent)?;
                sent += 1;
                if let Some(rate) = args.rate.filter(|&r| r > 0) {
                    let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            }
        }
        None => {
            let mut input = input;
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = input
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Failure::other(format!("cannot read standard input: {e}")))?;
                if n == 0 {
                    break;
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.len() > max_len {
                    return Err(Failure::usage(format!(
                        "line {} has {} bytes, channel {channel:?} takes at most {max_len}; \
                         split it or recreate the region with a larger --slot-size",
                        sent + 1,
                        line.len()
                    )));
                }
                out.send(&line, sent)?;
                sent += 1;
            }
        }
    }
    let epoch = alive.epoch();
    out.sender
        .close()
        .map_err(|e| Failure::other(format!("cannot close channel {channel:?}: {e}")))?;
    alive.stop();
    Ok(SendSummary { sent, first, epoch })
}

/// A connected sender with its doorbell and its watch on the receiver.
struct Out<'a> {
    sender: Sender,
    notifier: Notifier<FutexWake>,
    watchdog: Watchdog,
    clock: &'a Millis,
    args: &'a SendArgs,
    peer: String,
}

impl<'a> Out<'a> {
    /// Offers the channel, waiting (bounded) while the receiver still has to
    /// reclaim a previous incarnation of this sender.
    fn connect(
        end: &EndMapping,
        alive: &Alive,
        args: &'a SendArgs,
        clock: &'a Millis,
    ) -> CliResult<Out<'a>> {
        let channel = args.end.channel.as_str();
        let hello = Hello::new(end.channel.message_type);
        let deadline = clock.now() + args.end.timeout.as_millis() as u64;
        let sender = loop {
            match Sender::connect(&end.manifest, alive.node(), channel, hello) {
                Ok(s) => break s,
                Err(ConnectError::ReclaimPending { old_epoch }) => {
                    if clock.now() >= deadline {
                        return Err(Failure::peer(format!(
                            "channel {channel:?} still holds the state of the previous sender \
                             (epoch {old_epoch}) and no receiver reclaimed it within {} s; \
                             start `mkipc recv` on the channel (it drains and reclaims), then \
                             send again",
                            args.end.timeout.as_secs()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(connect_failure(channel, e)),
            }
        };
        let bell = FutexWake::new(end.region.clone(), end.ring.tail_word())
            .map_err(|e| Failure::other(format!("cannot set up the doorbell: {e}")))?;
        let notifier = Notifier::new(end.region.clone(), end.ring.need_wakeup_word(), bell)
            .map_err(|e| Failure::corrupt(format!("the receiver's wake-up word: {e}")))?;
        let dead = args.end.dead_after.as_millis() as u64;
        let watchdog = Watchdog::new(&end.manifest, end.peer.id, dead, clock.now())
            .map_err(|e| liveness_failure(end.peer.name.as_str(), e))?;
        Ok(Out {
            sender,
            notifier,
            watchdog,
            clock,
            args,
            peer: end.peer.name.as_str().to_string(),
        })
    }

    /// Sends one message, waiting (bounded) for room, and rings the receiver if
    /// it sleeps.
    fn send(&mut self, msg: &[u8], sent: u64) -> CliResult {
        if sent.is_multiple_of(POLL_EVERY) {
            self.poll(sent)?;
        }
        let mut full_since = None;
        let mut pause = Duration::from_micros(20);
        loop {
            match self.sender.send(msg) {
                Ok(()) => {
                    self.notifier
                        .notify()
                        .map_err(|e| Failure::other(format!("cannot ring the receiver: {e}")))?;
                    return Ok(());
                }
                Err(SendError::Ring(ProduceError::Full)) => {
                    let since = *full_since.get_or_insert_with(|| self.clock.now());
                    self.wait_for_room(since, sent)?;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(2));
                }
                Err(SendError::PeerClosed) => return Err(self.closed(sent)),
                Err(SendError::Ring(ProduceError::Broken(fault))) => {
                    return Err(Failure::corrupt(format!(
                        "the receiver corrupted channel {:?}: {fault}; recreate the region",
                        self.args.end.channel
                    )));
                }
                Err(e) => {
                    return Err(Failure::usage(format!(
                        "channel {:?} refuses the message: {e}",
                        self.args.end.channel
                    )));
                }
            }
        }
    }

    fn closed(&self, sent: u64) -> Failure {
        Failure::peer(format!(
            "the receiver closed channel {:?} after {sent} message(s) from this sender",
            self.args.end.channel
        ))
    }

    /// Reads the receiver's connect words: refuses to go on once it closed.
    fn poll(&mut self, sent: u64) -> CliResult {
        match self.sender.poll() {
            Ok(LinkStatus::PeerClosed) => Err(self.closed(sent)),
            Ok(_) => Ok(()),
            Err(e) => Err(connect_failure(&self.args.end.channel, e)),
        }
    }

    /// The ring is full: is the receiver still there, and how long has it been?
    fn wait_for_room(&mut self, full_since: u64, sent: u64) -> CliResult {
        self.poll(sent)?;
        let now = self.clock.now();
        let status = self
            .watchdog
            .observe(now)
            .map_err(|e| liveness_failure(&self.peer, e))?;
        let channel = &self.args.end.channel;
        let queued = "the messages already sent stay queued for the next receiver";
        match status {
            PeerStatus::Dead { epoch } | PeerStatus::Fenced { epoch } => {
                Err(Failure::peer(format!(
                    "the receiver of channel {channel:?} (epoch {epoch}) died: no heartbeat for \
                     {} ms; {queued}",
                    self.args.end.dead_after.as_millis()
                )))
            }
            PeerStatus::Stopped { .. } => Err(Failure::peer(format!(
                "the receiver of channel {channel:?} exited while the ring was full after \
                 {sent} message(s); {queued}"
            ))),
            _ if now.saturating_sub(full_since) >= self.args.end.timeout.as_millis() as u64 => {
                Err(Failure::peer(format!(
                    "channel {channel:?} stayed full for {} s (no receiver is taking messages); \
                     start `mkipc recv`, or pass a longer --timeout",
                    self.args.end.timeout.as_secs()
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Prints the summary line of a finished send.
pub fn report(summary: &SendSummary, channel: &str, err: &mut impl Write) {
    let _ = writeln!(
        err,
        "sent {} message(s) on channel {channel:?} (positions {}..{}, sender epoch {})",
        summary.sent,
        summary.first,
        summary.first + summary.sent,
        summary.epoch
    );
}

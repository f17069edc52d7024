//! The consuming end of a connection.

use core::fmt;

use super::link::{Agreement, ConnectError, Hello, Link, LinkState, ReclaimError, word};
use crate::lifecycle::{Clock, LocalNode, Watchdog};
use crate::manifest::{End, Manifest, Rights};
use crate::recorder::{EventKind, FlightRecorder};
use crate::spsc::{ConsumeError, Consumer};
use crate::sync::Ordering;

/// Why no message was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// No producer accepted yet (and no dead one being drained).
    NotConnected,
    /// Nothing queued right now.
    Empty,
    /// The producer closed the channel and everything it sent was received.
    Closed,
    /// The ring refused (buffer too small, or broken by the producer).
    Ring(ConsumeError),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::NotConnected => write!(f, "no producer has been accepted yet"),
            RecvError::Empty => write!(f, "no message queued"),
            RecvError::Closed => write!(f, "the producer closed the channel"),
            RecvError::Ring(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for RecvError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for an offer.
    Listening,
    /// Accepted producer incarnation `.0`.
    Connected(Agreement),
    /// The producer incarnation is gone; receiving what it committed.
    Draining,
    /// Closed (by us, or by the producer and fully drained).
    Closed,
}

/// The consumer of an SPSC channel.
#[derive(Debug)]
pub struct Receiver {
    link: Link,
    consumer: Option<Consumer>,
    phase: Phase,
    /// The producer incarnation whose ring state we hold (0: none).
    holds: u64,
    /// The last producer incarnation we reclaimed.
    reclaimed: u64,
}

impl Receiver {
    /// Opens `channel` as its consumer; nothing is received before an accept.
    ///
    /// A restarted consumer picks up the producer incarnation its previous
    /// incarnation accepted (and resumes from its own released position).
    pub fn open(
        manifest: &Manifest,
        node: &LocalNode,
        channel: &str,
        hello: Hello,
    ) -> Result<Receiver, ConnectError> {
        let link = Link::new(
            manifest,
            node,
            channel,
            End::Consumer,
            Rights::RECEIVE,
            hello,
        )?;
        let own = link.grant.end_block;
        let reclaimed = link.own(word!(own, reclaimed_epoch))?;
        let holds = match LinkState::from_wire(link.own(word!(own, state))?) {
            Some(LinkState::Accepted | LinkState::Closed) => {
                let e = link.own(word!(own, peer_epoch))?;
                if e > reclaimed { e } else { 0 }
            }
            _ => 0,
        };
        Ok(Receiver {
            link,
            consumer: None,
            phase: Phase::Listening,
            holds,
            reclaimed,
        })
    }

    /// Checks the producer's offer once and accepts it.
    ///
    /// [`ConnectError::NoOffer`] while none is there; each refusal names its cause.
    pub fn try_accept(&mut self) -> Result<Agreement, ConnectError> {
        if let Phase::Connected(a) = self.phase {
            return Ok(a);
        }
        if self.phase == Phase::Closed {
            return Err(ConnectError::PeerClosed);
        }
        let node_epoch = self.link.peer_node_epoch()?;
        let Some(p) = self.link.read_peer()? else {
            return Err(ConnectError::NoOffer);
        };
        match p.state {
            LinkState::Idle => return Err(ConnectError::NoOffer),
            LinkState::Accepted => {
                return Err(self.link.fault(ConnectError::BadWord {
                    field: "state",
                    found: p.state.to_wire(0),
                }));
            }
            LinkState::Offered | LinkState::Closed => {}
        }
        self.link.check_build(&p)?;
        if p.epoch == 0 || p.epoch > node_epoch {
            return Err(self.link.fault(ConnectError::BadWord {
                field: "epoch",
                found: p.epoch,
            }));
        }
        if p.epoch < node_epoch || p.epoch <= self.reclaimed {
            return Err(ConnectError::StaleEpoch {
                found: p.epoch,
                current: node_epoch,
            });
        }
        if self.holds != 0 && self.holds != p.epoch {
            return Err(ConnectError::ReclaimPending {
                old_epoch: self.holds,
            });
        }
        let limit = u64::from(self.link.hello.max_message);
        if p.max_message > limit {
            return Err(ConnectError::TooLarge {
                offered: p.max_message,
                limit,
            });
        }
        let features = p.features & self.link.hello.features;
        if self.consumer.is_none() {
            self.consumer = Some(Consumer::attach(
                self.link.region.clone(),
                self.link.channel.offset,
            )?);
        }
        self.link.publish(LinkState::Accepted, p.epoch, features)?;
        self.link.record(EventKind::Connect, features);
        let agreement = Agreement {
            features,
            max_message: p.max_message as u32,
            peer_epoch: p.epoch,
        };
        self.holds = p.epoch;
        self.phase = Phase::Connected(agreement);
        Ok(agreement)
    }

    /// [`Receiver::try_accept`] until an offer is accepted or refused, for at most
    /// `timeout` of `clock`'s time.
    pub fn accept_within(
        &mut self,
        clock: &impl Clock,
        timeout: u64,
    ) -> Result<Agreement, ConnectError> {
        let start = clock.now();
        loop {
            let last = match self.try_accept() {
                Ok(a) => return Ok(a),
                Err(e @ (ConnectError::NoOffer | ConnectError::StaleEpoch { .. })) => e,
                Err(e) => return Err(e),
            };
            let waited = clock.now().saturating_sub(start);
            if waited >= timeout {
                return Err(match last {
                    ConnectError::StaleEpoch { .. } => last,
                    _ => ConnectError::PeerNotReady { waited },
                });
            }
            core::hint::spin_loop();
        }
    }

    /// The agreement, once accepted.
    pub fn agreement(&self) -> Option<Agreement> {
        match self.phase {
            Phase::Connected(a) => Some(a),
            _ => None,
        }
    }

    /// Copies the next message into `buf`; returns its length.
    ///
    /// After the producer closes, queued messages are still delivered, then
    /// [`RecvError::Closed`].
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        if self.phase == Phase::Closed {
            return Err(RecvError::Closed);
        }
        if self.phase == Phase::Listening {
            return Err(RecvError::NotConnected);
        }
        let consumer = self.consumer.as_mut().ok_or(RecvError::NotConnected)?;
        match consumer.pop(buf) {
            Err(ConsumeError::Empty) => {}
            other => return other.map_err(RecvError::Ring),
        }
        if self.phase == Phase::Draining || !self.peer_closed() {
            return Err(RecvError::Empty);
        }
        // The Closed state was stored after the producer's last commit, and our
        // Acquire load of it makes those commits visible: one more look decides.
        let consumer = self.consumer.as_mut().ok_or(RecvError::NotConnected)?;
        match consumer.pop(buf) {
            Err(ConsumeError::Empty) => {
                self.link.record(EventKind::PeerClose, self.holds);
                self.reset(self.holds).map_err(|_| RecvError::Closed)?;
                self.phase = Phase::Closed;
                Err(RecvError::Closed)
            }
            other => other.map_err(RecvError::Ring),
        }
    }

    /// Whether the accepted producer incarnation has closed its end.
    fn peer_closed(&self) -> bool {
        let b = self.link.peer.end_block;
        // Acquire: pairs with the Release state store in `Sender::close`.
        let state = self.link.region.load(word!(b, state), Ordering::Acquire);
        let epoch = self.link.region.load(word!(b, epoch), Ordering::Relaxed);
        let closed = state.ok().and_then(LinkState::from_wire) == Some(LinkState::Closed);
        closed && epoch == Ok(self.holds)
    }

    /// The ring's consumer (after an accept), for zero-copy peek/release.
    pub fn consumer(&mut self) -> Option<&mut Consumer> {
        match self.phase {
            Phase::Connected(_) | Phase::Draining => self.consumer.as_mut(),
            _ => None,
        }
    }

    /// This end's flight recorder.
    pub fn recorder(&self) -> &FlightRecorder {
        &self.link.recorder
    }

    /// Refusals caused by the producer's words so far.
    pub fn peer_faults(&self) -> u64 {
        self.link.faults
    }

    /// Reclaims the channel from a producer incarnation that `watch` says is gone
    /// (dead and fenced, or superseded by a restart).
    ///
    /// Committed messages are never dropped: while any is queued this returns
    /// [`ReclaimError::NotDrained`] and [`Receiver::recv`] delivers them. Once the
    /// ring is empty (or broken by the dead producer), the channel is reset: the
    /// next producer incarnation resumes at our released position. Returns it.
    pub fn reclaim(&mut self, watch: &Watchdog) -> Result<u64, ReclaimError> {
        if !self.link.grant.rights.contains(Rights::ADMIN) {
            return Err(ReclaimError::NotGranted);
        }
        if watch.node().index != self.link.peer.node {
            return Err(ReclaimError::WrongNode);
        }
        let epoch = match self.holds {
            0 => {
                // A producer that offered (and maybe queued) but was never accepted.
                let b = self.link.peer.end_block;
                let e = self.link.region.load(word!(b, epoch), Ordering::Acquire)?;
                if e <= self.reclaimed {
                    return Err(ReclaimError::NothingToReclaim);
                }
                e
            }
            e => e,
        };
        if !watch.is_gone(epoch) {
            return Err(ReclaimError::NotGone { epoch });
        }
        if self.phase != Phase::Draining {
            self.link.record(EventKind::PeerDead, epoch);
            self.holds = epoch;
            self.phase = Phase::Draining;
        }
        if self.consumer.is_none() {
            let c = Consumer::attach(self.link.region.clone(), self.link.channel.offset)
                .map_err(|_| ReclaimError::NothingToReclaim)?;
            self.consumer = Some(c);
        }
        if let Some(c) = self.consumer.as_mut() {
            match c.peek(1) {
                Ok(_) => return Err(ReclaimError::NotDrained),
                Err(ConsumeError::Empty) => {}
                // A dead producer that broke the ring lost its own uncommitted
                // messages; the reset below erases its garbage.
                Err(_) => {}
            }
        }
        let resume = self.reset(epoch)?;
        self.phase = Phase::Listening;
        Ok(resume)
    }

    /// Publishes the reset point for producer incarnation `epoch` and goes idle.
    fn reset(&mut self, epoch: u64) -> Result<u64, crate::AccessError> {
        let own = self.link.grant.end_block;
        let resume = self.consumer.as_ref().map_or(0, Consumer::released);
        let r = &self.link.region;
        // Relaxed: published by the Release store of `reclaimed_epoch` below.
        r.store(word!(own, resume_at), resume, Ordering::Relaxed)?;
        // Release: pairs with the Acquire load of `reclaimed_epoch` in
        // `Sender::connect`, which then reads this `resume_at`.
        r.store(word!(own, reclaimed_epoch), epoch, Ordering::Release)?;
        self.link.set_state(LinkState::Idle)?;
        self.link.record(EventKind::Reset, resume);
        self.reclaimed = epoch;
        self.holds = 0;
        // A fresh consumer: the fault latch of the dead incarnation's ring goes.
        self.consumer = None;
        Ok(resume)
    }

    /// Closes this end: the producer's next poll sees it and stops sending.
    /// Messages still queued are left to the ring.
    pub fn close(&mut self) -> Result<(), crate::AccessError> {
        let released = self.consumer.as_ref().map_or(0, Consumer::released);
        self.link.record(EventKind::Close, released);
        self.phase = Phase::Closed;
        self.link.set_state(LinkState::Closed)
    }
}

//! The producing end of a connection.

use core::fmt;

use super::link::{
    Agreement, ConnectError, Hello, Link, LinkState, LinkStatus, ReclaimError, word,
};
use crate::lifecycle::{Clock, LocalNode, Watchdog};
use crate::manifest::{End, Manifest, Rights};
use crate::recorder::{EventKind, FlightRecorder};
use crate::spsc::{ProduceError, Producer, RingLayout};
use crate::sync::Ordering;

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The consumer closed the channel.
    PeerClosed,
    /// The message is larger than the agreed maximum.
    TooLarge {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The ring refused it (full, or broken by the consumer).
    Ring(ProduceError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::PeerClosed => write!(f, "the consumer closed the channel"),
            SendError::TooLarge { len, max } => {
                write!(
                    f,
                    "a {len}-byte message exceeds the agreed maximum of {max}"
                )
            }
            SendError::Ring(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for SendError {}

/// The producer of a connected (or connecting) SPSC channel.
#[derive(Debug)]
pub struct Sender {
    link: Link,
    producer: Producer,
    status: LinkStatus,
    /// The epoch of a stale accept seen while waiting (for the timeout's error).
    stale: Option<u64>,
    /// The consumer epoch of the last connection (to record epoch changes).
    last_peer_epoch: u64,
}

impl Sender {
    /// Offers the channel `channel` as its producer and attaches to the ring.
    ///
    /// Messages may be pushed at once; they queue until the consumer accepts. If this
    /// node's previous incarnation used the channel, the consumer must have
    /// reclaimed it first ([`ConnectError::ReclaimPending`] otherwise); the ring then
    /// resumes where the consumer stopped.
    pub fn connect(
        manifest: &Manifest,
        node: &LocalNode,
        channel: &str,
        hello: Hello,
    ) -> Result<Sender, ConnectError> {
        Sender::prepare(manifest, node, channel, hello)?.offer()
    }

    /// The look-ups of [`Sender::connect`] without writing anything: resolve the
    /// channel, the grants and the ring once; offer later with [`Offer::offer`].
    pub fn prepare(
        manifest: &Manifest,
        node: &LocalNode,
        channel: &str,
        hello: Hello,
    ) -> Result<Offer, ConnectError> {
        let link = Link::new(manifest, node, channel, End::Producer, Rights::SEND, hello)?;
        let ring = RingLayout::read(&link.region, link.channel.offset)?;
        Ok(Offer { link, ring })
    }

    /// [`Sender::connect`], retrying while the consumer has not reclaimed our
    /// previous incarnation, for at most `timeout` of `clock`'s time.
    pub fn connect_within(
        manifest: &Manifest,
        node: &LocalNode,
        channel: &str,
        hello: Hello,
        clock: &impl Clock,
        timeout: u64,
    ) -> Result<Sender, ConnectError> {
        let start = clock.now();
        loop {
            match Sender::connect(manifest, node, channel, hello) {
                Err(ConnectError::ReclaimPending { .. }) => {
                    let waited = clock.now().saturating_sub(start);
                    if waited >= timeout {
                        return Err(ConnectError::PeerNotReady { waited });
                    }
                    core::hint::spin_loop();
                }
                other => return other,
            }
        }
    }

    /// Reads the consumer's connect words once and updates the status.
    pub fn poll(&mut self) -> Result<LinkStatus, ConnectError> {
        if self.status == LinkStatus::PeerClosed {
            return Ok(self.status);
        }
        let node_epoch = self.link.peer_node_epoch()?;
        let Some(p) = self.link.read_peer()? else {
            return Ok(self.status);
        };
        let next = match p.state {
            LinkState::Idle => LinkStatus::Pending,
            LinkState::Offered => {
                return Err(self.link.fault(ConnectError::BadWord {
                    field: "state",
                    found: LinkState::Offered.to_wire(0),
                }));
            }
            LinkState::Accepted | LinkState::Closed => {
                if p.peer_epoch != self.link.epoch {
                    // An answer to an earlier incarnation of ours.
                    self.stale = Some(p.peer_epoch);
                    LinkStatus::Pending
                } else if p.epoch != node_epoch {
                    // Written by a consumer incarnation that is no longer running.
                    LinkStatus::Pending
                } else if p.state == LinkState::Closed {
                    self.link.record(EventKind::PeerClose, p.epoch);
                    LinkStatus::PeerClosed
                } else {
                    self.link.check_build(&p)?;
                    if p.agreed_features & !self.link.hello.features != 0 {
                        return Err(self.link.fault(ConnectError::BadWord {
                            field: "agreed_features",
                            found: p.agreed_features,
                        }));
                    }
                    let agreement = Agreement {
                        features: p.agreed_features,
                        max_message: self.link.hello.max_message,
                        peer_epoch: p.epoch,
                    };
                    if self.status != LinkStatus::Connected(agreement) {
                        if self.last_peer_epoch != 0 && self.last_peer_epoch != p.epoch {
                            self.link.record(EventKind::EpochChange, p.epoch);
                        }
                        self.link.record(EventKind::Connect, agreement.features);
                        self.last_peer_epoch = p.epoch;
                    }
                    LinkStatus::Connected(agreement)
                }
            }
        };
        self.status = next;
        Ok(next)
    }

    /// Polls until the consumer accepts, for at most `timeout` of `clock`'s time.
    pub fn wait_connected(
        &mut self,
        clock: &impl Clock,
        timeout: u64,
    ) -> Result<Agreement, ConnectError> {
        let start = clock.now();
        loop {
            match self.poll()? {
                LinkStatus::Connected(a) => return Ok(a),
                LinkStatus::PeerClosed => return Err(ConnectError::PeerClosed),
                LinkStatus::Pending => {}
            }
            let now = clock.now();
            let waited = now.saturating_sub(start);
            if waited >= timeout {
                return Err(match self.stale {
                    Some(found) => ConnectError::StaleEpoch {
                        found,
                        current: self.link.epoch,
                    },
                    None => ConnectError::PeerNotReady { waited },
                });
            }
            core::hint::spin_loop();
        }
    }

    /// The status as of the last [`Sender::poll`].
    pub fn status(&self) -> LinkStatus {
        self.status
    }

    /// Copies `msg` into the ring (queued even before the consumer accepts).
    ///
    /// The consumer's close is noticed by [`Sender::poll`], not here, so the fast
    /// path reads no peer word.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        if self.status == LinkStatus::PeerClosed {
            return Err(SendError::PeerClosed);
        }
        let max = self.link.hello.max_message as usize;
        if msg.len() > max {
            return Err(SendError::TooLarge {
                len: msg.len(),
                max,
            });
        }
        self.producer.push(msg).map_err(SendError::Ring)
    }

    /// The ring's producer, for zero-copy reserve/commit.
    pub fn producer(&mut self) -> &mut Producer {
        &mut self.producer
    }

    /// This end's flight recorder.
    pub fn recorder(&self) -> &FlightRecorder {
        &self.link.recorder
    }

    /// Refusals caused by the consumer's words so far.
    pub fn peer_faults(&self) -> u64 {
        self.link.faults
    }

    /// After the consumer's death (per `watch`): forget the connection. Queued
    /// messages stay in the ring for the consumer's next incarnation, which
    /// resumes from its own released position and accepts again.
    pub fn reclaim(&mut self, watch: &Watchdog) -> Result<(), ReclaimError> {
        if watch.node().index != self.link.peer.node {
            return Err(ReclaimError::WrongNode);
        }
        let epoch = match self.status {
            LinkStatus::Connected(a) => a.peer_epoch,
            _ => self.last_peer_epoch,
        };
        if epoch == 0 {
            return Err(ReclaimError::NothingToReclaim);
        }
        if !watch.is_gone(epoch) {
            return Err(ReclaimError::NotGone { epoch });
        }
        self.link.record(EventKind::PeerDead, epoch);
        self.status = LinkStatus::Pending;
        Ok(())
    }

    /// Closes this end after everything committed so far: the consumer drains what
    /// is queued, then sees the channel closed.
    pub fn close(mut self) -> Result<(), crate::AccessError> {
        self.link
            .record(EventKind::Close, self.producer.published());
        // The Release store of the state orders it after every commit (each a
        // Release stamp store); pairs with the consumer's Acquire state load.
        self.link.set_state(LinkState::Closed)
    }
}

/// A resolved producer end that has not offered yet ([`Sender::prepare`]).
#[derive(Debug)]
pub struct Offer {
    link: Link,
    ring: RingLayout,
}

impl Offer {
    /// Writes the offer (after resuming from a reclaimed previous incarnation, if
    /// any) and attaches to the ring; see [`Sender::connect`].
    pub fn offer(self) -> Result<Sender, ConnectError> {
        let Offer { mut link, ring } = self;
        let own = link.grant.end_block;
        let old_state = LinkState::from_wire(link.own(word!(own, state))?);
        let old_epoch = link.own(word!(own, epoch))?;
        if old_state != Some(LinkState::Idle) && old_epoch != 0 && old_epoch != link.epoch {
            // Our previous incarnation used this end: resume where the consumer
            // reclaimed, never from our own (possibly torn) tail.
            let peer = link.peer.end_block;
            // Acquire: pairs with the Release store of `reclaimed_epoch` in
            // `Receiver::reset`, so `resume_at` below is the one written with it.
            let reclaimed = link
                .region
                .load(word!(peer, reclaimed_epoch), Ordering::Acquire)?;
            if reclaimed < old_epoch {
                return Err(ConnectError::ReclaimPending { old_epoch });
            }
            let resume = link
                .region
                .load(word!(peer, resume_at), Ordering::Relaxed)?;
            // Acquire: pairs with the consumer's Release store of `head`.
            let head = link.region.load(ring.head_word(), Ordering::Acquire)?;
            if head != resume {
                return Err(link.fault(ConnectError::BadWord {
                    field: "resume_at",
                    found: resume,
                }));
            }
            restamp(&link, &ring, resume)?;
            link.record(EventKind::Reset, resume);
        }
        link.publish(LinkState::Offered, 0, 0)?;
        link.record(EventKind::Offer, link.hello.features);
        let producer = Producer::attach(link.region.clone(), link.channel.offset)?;
        Ok(Sender {
            link,
            producer,
            status: LinkStatus::Pending,
            stale: None,
            last_peer_epoch: 0,
        })
    }
}

/// Resets the stamps of the slots the next incarnation will write, from position
/// `resume` on, and sets the published count to it: a dead incarnation's torn
/// writes are erased (they were never committed).
fn restamp(link: &Link, ring: &RingLayout, resume: u64) -> Result<(), ConnectError> {
    for position in resume..resume.saturating_add(ring.capacity()) {
        // Relaxed: our own slots; the consumer polls these stamps only for the
        // values `position + 1`, which it cannot see until a later Release commit.
        link.region.store(
            ring.tag_word(position),
            ring.empty_stamp(position),
            Ordering::Relaxed,
        )?;
    }
    // Relaxed: our own word; the producer re-reads it in `Producer::attach`.
    link.region
        .store(ring.tail_word(), resume, Ordering::Relaxed)?;
    Ok(())
}

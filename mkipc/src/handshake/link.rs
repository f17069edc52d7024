//! The connect words of one channel end, the errors, and the shared plumbing of
//! both ends.

use crate::MessageType;
use crate::header::HeaderError;
use crate::layout::{ABI_VERSION, LAYOUT_HASH};
use crate::lifecycle::{LocalNode, NodeWords};
use crate::manifest::{ChannelInfo, ChannelKind, End, GrantInfo, Manifest, ManifestError, Rights};
use crate::recorder::{EventKind, FlightRecorder};
use crate::shm::{AccessError, Region};
use crate::spsc::RingError;
use crate::sync::Ordering;
use core::fmt;

/// What one end brings to the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Feature bits this build supports; the connection uses the intersection.
    pub features: u64,
    /// Largest message this end sends (producer) or takes (consumer).
    pub max_message: u32,
    /// The message type this end speaks.
    pub message_type: MessageType,
}

impl Hello {
    /// Messages of `message_type`, no optional features.
    pub fn new(message_type: MessageType) -> Hello {
        Hello {
            features: 0,
            max_message: message_type.size,
            message_type,
        }
    }

    /// The same hello with feature bits `features`.
    pub fn with_features(self, features: u64) -> Hello {
        Hello { features, ..self }
    }
}

/// What both ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// Feature bits both support.
    pub features: u64,
    /// Largest message.
    pub max_message: u32,
    /// The peer's epoch.
    pub peer_epoch: u64,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    /// Offered or listening, not (or no longer) connected.
    Pending,
    /// Both ends agreed.
    Connected(Agreement),
    /// The peer closed its end.
    PeerClosed,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    /// The manifest is unusable or has no such channel or node.
    Manifest(ManifestError),
    /// A region access failed.
    Access(AccessError),
    /// The peer's connect words carry the wrong magic, ABI version or layout hash.
    Peer(HeaderError),
    /// The manifest grants this node no such end, or not the right it needs.
    NotGranted {
        /// The end asked for.
        end: End,
        /// The right needed.
        needed: Rights,
    },
    /// The manifest has no node holding the other end.
    NoPeer,
    /// The channel is not an SPSC ring (MPSC and pool channels connect through
    /// their own modules).
    WrongKind(ChannelKind),
    /// The message types differ.
    IncompatibleType {
        /// Ours (or the manifest's, when ours differs from it).
        expected: MessageType,
        /// The one found.
        found: MessageType,
    },
    /// The peer (or we) would send larger messages than the other end takes.
    TooLarge {
        /// Size offered.
        offered: u64,
        /// Limit.
        limit: u64,
    },
    /// Nothing offered yet (the producer has not connected).
    NoOffer,
    /// The peer did not become ready within the timeout.
    PeerNotReady {
        /// Time waited, in the caller's clock units.
        waited: u64,
    },
    /// The peer's words belong to an earlier incarnation than the one running
    /// (or to one already reclaimed).
    StaleEpoch {
        /// Epoch in the peer's words.
        found: u64,
        /// The peer node's current epoch.
        current: u64,
    },
    /// The channel still holds the state of incarnation `old_epoch`; the consumer
    /// must reclaim it (after the watchdog says it is gone) before a new one connects.
    ReclaimPending {
        /// The incarnation to reclaim.
        old_epoch: u64,
    },
    /// The peer closed the channel.
    PeerClosed,
    /// A peer word holds an impossible value (latched and counted).
    BadWord {
        /// Which word.
        field: &'static str,
        /// Its value.
        found: u64,
    },
    /// The ring could not be attached.
    Ring(RingError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConnectError::Manifest(e) => write!(f, "{e}"),
            ConnectError::Access(e) => write!(f, "connect words: {e}"),
            ConnectError::Peer(e) => write!(f, "the peer's connect words: {e}"),
            ConnectError::NotGranted { end, needed } => write!(
                f,
                "this node holds no {needed} grant for the {end:?} end; add one to the manifest"
            ),
            ConnectError::NoPeer => write!(f, "the manifest grants the other end to no node"),
            ConnectError::WrongKind(k) => {
                write!(f, "channel is {k:?}; this handshake connects SPSC channels")
            }
            ConnectError::IncompatibleType { expected, found } => write!(
                f,
                "message type mismatch: expected {expected:?}, found {found:?}; \
                 build both ends with the same message type"
            ),
            ConnectError::TooLarge { offered, limit } => write!(
                f,
                "messages of up to {offered} bytes exceed the limit of {limit}"
            ),
            ConnectError::NoOffer => write!(f, "the producer has not offered yet"),
            ConnectError::PeerNotReady { waited } => {
                write!(f, "the peer did not get ready within {waited} time units")
            }
            ConnectError::StaleEpoch { found, current } => write!(
                f,
                "the peer's words are from epoch {found} but it runs epoch {current}; \
                 wait for the current incarnation to connect"
            ),
            ConnectError::ReclaimPending { old_epoch } => write!(
                f,
                "the channel still holds the state of epoch {old_epoch}; \
                 the consumer must reclaim it first"
            ),
            ConnectError::PeerClosed => write!(f, "the peer closed the channel"),
            ConnectError::BadWord { field, found } => write!(
                f,
                "the peer wrote impossible value {found:#x} into `{field}`"
            ),
            ConnectError::Ring(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ConnectError {}

impl From<AccessError> for ConnectError {
    fn from(e: AccessError) -> Self {
        ConnectError::Access(e)
    }
}

impl From<ManifestError> for ConnectError {
    fn from(e: ManifestError) -> Self {
        ConnectError::Manifest(e)
    }
}

impl From<RingError> for ConnectError {
    fn from(e: RingError) -> Self {
        ConnectError::Ring(e)
    }
}

/// Why a reclaim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReclaimError {
    /// The watchdog does not (yet) say the incarnation is gone: declare it dead and
    /// fence it first.
    NotGone {
        /// The incarnation to reclaim.
        epoch: u64,
    },
    /// Committed messages are still queued: receive them, then reclaim again.
    NotDrained,
    /// This node lacks the `admin` right on its end.
    NotGranted,
    /// The watchdog watches another node.
    WrongNode,
    /// There is no incarnation to reclaim.
    NothingToReclaim,
    /// A region access failed.
    Access(AccessError),
}

impl fmt::Display for ReclaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ReclaimError::NotGone { epoch } => write!(
                f,
                "peer incarnation {epoch} is not known to be gone; declare it dead and fence it"
            ),
            ReclaimError::NotDrained => {
                write!(f, "committed messages are still queued; receive them first")
            }
            ReclaimError::NotGranted => write!(f, "reclaiming needs the admin right"),
            ReclaimError::WrongNode => write!(f, "the watchdog watches another node"),
            ReclaimError::NothingToReclaim => write!(f, "no peer incarnation to reclaim"),
            ReclaimError::Access(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for ReclaimError {}

impl From<AccessError> for ReclaimError {
    fn from(e: AccessError) -> Self {
        ReclaimError::Access(e)
    }
}

/// Top 16 bits of a link state word: `"LK"`.
const LINK_TAG: u64 = (u16::from_le_bytes(*b"LK") as u64) << 48;

/// State of one end's connect words.
///
/// On the wire: `"LK"` in bits 48..64, the state in bits 32..48 and the writer's
/// publish count in bits 0..32 (so a reader can tell two publications of the same
/// state apart); 0 means never written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    Idle,
    Offered,
    Accepted,
    Closed,
}

impl LinkState {
    pub(crate) const fn to_wire(self, count: u32) -> u64 {
        let code = match self {
            LinkState::Idle => 0,
            LinkState::Offered => 1,
            LinkState::Accepted => 2,
            LinkState::Closed => 3,
        };
        LINK_TAG | code << 32 | count as u64
    }

    pub(crate) const fn from_wire(w: u64) -> Option<LinkState> {
        if w == 0 {
            return Some(LinkState::Idle);
        }
        if w & (0xffff << 48) != LINK_TAG {
            return None;
        }
        match (w >> 32) & 0xffff {
            0 => Some(LinkState::Idle),
            1 => Some(LinkState::Offered),
            2 => Some(LinkState::Accepted),
            3 => Some(LinkState::Closed),
            _ => None,
        }
    }
}

/// A private, validated-later copy of a peer's connect words.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerWords {
    pub state: LinkState,
    pub epoch: u64,
    pub features: u64,
    pub max_message: u64,
    pub message_type: MessageType,
    pub abi_version: u64,
    pub layout_hash: u64,
    pub peer_epoch: u64,
    pub agreed_features: u64,
}

/// One end's side of a channel: its block, the peer's block and node, its hello.
#[derive(Debug)]
pub(crate) struct Link {
    pub region: Region,
    pub channel: ChannelInfo,
    pub grant: GrantInfo,
    /// The peer's grant (its end block).
    pub peer: GrantInfo,
    pub peer_node: NodeWords,
    pub epoch: u64,
    pub hello: Hello,
    /// Our publish count (low half of our state word).
    pub count: u32,
    pub recorder: FlightRecorder,
    /// Refusals caused by the peer's words (not latched: a restarted peer may fix
    /// them), published in our block.
    pub faults: u64,
}

macro_rules! word {
    ($block:expr, $field:ident) => {
        $block + core::mem::offset_of!($crate::manifest::wire::EndControl, $field)
    };
}
pub(crate) use word;

impl Link {
    /// Looks up the channel, our grant (which must carry `needed`) and the peer's.
    pub(crate) fn new(
        manifest: &Manifest,
        node: &LocalNode,
        channel: &str,
        end: End,
        needed: Rights,
        hello: Hello,
    ) -> Result<Link, ConnectError> {
        let ch = manifest.find_channel(channel)?;
        if ch.kind != ChannelKind::Spsc {
            return Err(ConnectError::WrongKind(ch.kind));
        }
        let grant = manifest
            .grant_of(node.info().index, ch.index, end)?
            .filter(|g| g.rights.contains(needed))
            .ok_or(ConnectError::NotGranted { end, needed })?;
        let peer_end = match end {
            End::Producer => End::Consumer,
            End::Consumer => End::Producer,
        };
        let peer = manifest
            .find_grant(ch.index, |g| (g.end == peer_end).then_some(*g))?
            .ok_or(ConnectError::NoPeer)?;
        if hello.message_type != ch.message_type {
            return Err(ConnectError::IncompatibleType {
                expected: ch.message_type,
                found: hello.message_type,
            });
        }
        if hello.max_message > ch.max_message {
            return Err(ConnectError::TooLarge {
                offered: hello.max_message.into(),
                limit: ch.max_message.into(),
            });
        }
        let peer_node = NodeWords::of(&manifest.node(peer.node)?);
        let region = manifest.region().clone();
        // Relaxed: our own word; continue its count so readers never see a repeat.
        let count = region.load(word!(grant.end_block, state), Ordering::Relaxed)? as u32;
        Ok(Link {
            count,
            recorder: FlightRecorder::new(region.clone(), grant.end_block),
            region,
            channel: ch,
            grant,
            peer,
            peer_node,
            epoch: node.epoch(),
            hello,
            faults: 0,
        })
    }

    /// Reads a word of our own block.
    pub(crate) fn own(&self, at: usize) -> Result<u64, AccessError> {
        // Relaxed: our own words.
        self.region.load(at, Ordering::Relaxed)
    }

    /// Writes our hello with `state` last.
    ///
    /// The state goes to `Idle` first and every field store is Release: a reader
    /// whose Acquire load sees any new field then sees a newer state word than the
    /// one it started with, and retries (see `read_peer`).
    pub(crate) fn publish(
        &mut self,
        state: LinkState,
        peer_epoch: u64,
        agreed: u64,
    ) -> Result<(), AccessError> {
        self.set_state(LinkState::Idle)?;
        let b = self.grant.end_block;
        let r = &self.region;
        let [t0, t1] = self.hello.message_type.to_wire();
        for (at, v) in [
            (word!(b, epoch), self.epoch),
            (word!(b, features), self.hello.features),
            (word!(b, max_message), self.hello.max_message.into()),
            (word!(b, message_type), t0),
            (word!(b, message_type) + 8, t1),
            (word!(b, abi_version), ABI_VERSION.into()),
            (word!(b, layout_hash), LAYOUT_HASH),
            (word!(b, peer_epoch), peer_epoch),
            (word!(b, agreed_features), agreed),
        ] {
            // Release: see above; pairs with the Acquire field loads in `read_peer`.
            r.store(at, v, Ordering::Release)?;
        }
        self.set_state(state)
    }

    /// Stores our state word.
    pub(crate) fn set_state(&mut self, state: LinkState) -> Result<(), AccessError> {
        self.count = self.count.wrapping_add(1);
        // Release: pairs with the Acquire state load in `read_peer`: a peer that sees
        // the state sees the hello fields and every ring commit made before it.
        self.region.store(
            word!(self.grant.end_block, state),
            state.to_wire(self.count),
            Ordering::Release,
        )
    }

    /// The peer node's current epoch.
    pub(crate) fn peer_node_epoch(&self) -> Result<u64, AccessError> {
        self.peer_node.epoch(&self.region)
    }

    /// Reads the peer's connect words once: the state (Acquire), the fields
    /// (Acquire), the state again. `None` when the peer was rewriting them meanwhile
    /// (the two state loads differ): not ready, try again.
    pub(crate) fn read_peer(&mut self) -> Result<Option<PeerWords>, ConnectError> {
        let b = self.peer.end_block;
        let r = &self.region;
        // Acquire: pairs with the Release state store in `set_state` on the peer.
        let raw = r.load(word!(b, state), Ordering::Acquire)?;
        let Some(state) = LinkState::from_wire(raw) else {
            return Err(self.fault(ConnectError::Peer(HeaderError::BadMagic { found: raw })));
        };
        if state == LinkState::Idle {
            // Nothing published (or a publication in progress): no field matters.
            return Ok(Some(PeerWords {
                state,
                epoch: 0,
                features: 0,
                max_message: 0,
                message_type: MessageType::from_wire([0, 0]),
                abi_version: 0,
                layout_hash: 0,
                peer_epoch: 0,
                agreed_features: 0,
            }));
        }
        // Acquire: pairs with the peer's Release field stores in `publish`, and keeps
        // the second state load below after these.
        let load = |at| r.load(at, Ordering::Acquire);
        let words = PeerWords {
            state,
            epoch: load(word!(b, epoch))?,
            features: load(word!(b, features))?,
            max_message: load(word!(b, max_message))?,
            message_type: MessageType::from_wire([
                load(word!(b, message_type))?,
                load(word!(b, message_type) + 8)?,
            ]),
            abi_version: load(word!(b, abi_version))?,
            layout_hash: load(word!(b, layout_hash))?,
            peer_epoch: load(word!(b, peer_epoch))?,
            agreed_features: load(word!(b, agreed_features))?,
        };
        if r.load(word!(b, state), Ordering::Relaxed)? != raw {
            return Ok(None);
        }
        Ok(Some(words))
    }

    /// Checks the peer's build and message type.
    pub(crate) fn check_build(&mut self, p: &PeerWords) -> Result<(), ConnectError> {
        if p.abi_version != u64::from(ABI_VERSION) {
            let theirs = u32::try_from(p.abi_version).unwrap_or(u32::MAX);
            return Err(self.fault(ConnectError::Peer(HeaderError::VersionMismatch {
                ours: ABI_VERSION,
                theirs,
            })));
        }
        if p.layout_hash != LAYOUT_HASH {
            return Err(self.fault(ConnectError::Peer(HeaderError::LayoutMismatch {
                ours: LAYOUT_HASH,
                theirs: p.layout_hash,
            })));
        }
        if p.message_type != self.hello.message_type {
            return Err(ConnectError::IncompatibleType {
                expected: self.hello.message_type,
                found: p.message_type,
            });
        }
        Ok(())
    }

    /// Counts a refusal caused by the peer's words (published in our block and
    /// recorded), and passes it on.
    pub(crate) fn fault(&mut self, e: ConnectError) -> ConnectError {
        self.faults += 1;
        let count = self.faults;
        // Relaxed: a statistic for observers.
        let _ = self.region.store(
            word!(self.grant.end_block, faults),
            count,
            Ordering::Relaxed,
        );
        let _ = self.recorder.record(EventKind::Fault, self.epoch, count);
        e
    }

    /// Records an event in our recorder (best effort: a recorder that cannot be
    /// written must not stop the channel).
    pub(crate) fn record(&self, kind: EventKind, value: u64) {
        let _ = self.recorder.record(kind, self.epoch, value);
    }
}

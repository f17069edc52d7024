//! Wire structs of the manifest, the node sections and the flight recorder.
//!
//! Folded into [`LAYOUT_HASH`](crate::layout::LAYOUT_HASH) by `layout.rs`. Like every
//! wire struct these are copied in and out whole; words that change while nodes run
//! (state, heartbeat, epoch, connect words, recorder events) are accessed only through
//! [`Region`](crate::Region) atomics at the offsets given here.

use core::mem::{offset_of, size_of};

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::CACHE_LINE;

/// `"MKIPCMAN"` read as a little-endian word: the manifest's magic.
pub const MANIFEST_MAGIC: u64 = u64::from_le_bytes(*b"MKIPCMAN");

/// Bytes in a node or channel name (NUL-padded, printable ASCII).
pub const NAME_LEN: usize = 32;

/// Events each end's flight recorder keeps (a power of two).
pub const RECORDER_LEN: usize = 16;

/// Manifest header, right after the region header (offset 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ManifestHeader {
    /// [`MANIFEST_MAGIC`]; written last, so a reader that sees it sees the rest.
    pub magic: U64,
    /// Number of [`NodeEntry`] records.
    pub node_count: U32,
    /// Number of [`ChannelEntry`] records.
    pub channel_count: U32,
    /// Number of [`GrantEntry`] records.
    pub grant_count: U32,
    /// Channel ends each node section has room for (the most grants any node holds).
    pub ends_per_node: U32,
    /// Alignment of node sections and channels (4096, or 128 when compact).
    pub section_align: U32,
    /// Zero.
    pub pad: U32,
    /// Region offset of the node table.
    pub nodes_offset: U64,
    /// Region offset of the channel table.
    pub channels_offset: U64,
    /// Region offset of the grant table.
    pub grants_offset: U64,
    /// Region offset of node 0's section.
    pub sections_offset: U64,
    /// Bytes per node section (every section has the same size).
    pub section_size: U64,
    /// Region offset where channel storage starts.
    pub data_offset: U64,
    /// FNV-1a hash of the three tables, so a torn or altered manifest is refused.
    pub checksum: U64,
    /// Zero; room for later fields.
    pub reserved: [U64; 5],
}

/// One kernel instance or process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct NodeEntry {
    /// The node's id (unique in the manifest).
    pub id: U32,
    /// Zero; room for flags.
    pub flags: U32,
    /// NUL-padded printable ASCII name.
    pub name: [u8; NAME_LEN],
    /// Region offset of the node's own section.
    pub section_offset: U64,
    /// Zero.
    pub reserved: [U64; 2],
}

/// One channel: where it lives, its shape and its message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ChannelEntry {
    /// NUL-padded printable ASCII name (unique in the manifest).
    pub name: [u8; NAME_LEN],
    /// `ChannelKind` as a number: 1 SPSC, 2 MPSC, 3 pool.
    pub kind: U32,
    /// Producer ends the channel admits (1 for SPSC).
    pub max_producers: U32,
    /// Slots (SPSC/MPSC) or buffers (pool).
    pub slot_count: U32,
    /// Payload bytes per slot or buffer.
    pub slot_size: U32,
    /// Section alignment of the channel's own layout.
    pub section_align: U32,
    /// Largest message either end may send (at most `slot_size`).
    pub max_message: U32,
    /// Region offset of the channel's storage.
    pub offset: U64,
    /// Bytes of channel storage.
    pub size: U64,
    /// [`MessageType::to_wire`](crate::MessageType::to_wire) of the channel's messages.
    pub message_type: [U64; 2],
    /// Zero; room for later fields.
    pub reserved: [U64; 5],
}

/// Node `node` may use end `end` of channel `channel` with `rights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct GrantEntry {
    /// Index into the node table.
    pub node: U32,
    /// Index into the channel table.
    pub channel: U32,
    /// `End` as a number: 0 consumer, 1 producer.
    pub end: U32,
    /// `Rights` bits.
    pub rights: U32,
}

/// Liveness words a node writes at the start of its own section.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct NodeControl {
    /// `NodeState` tagged with `NODE_TAG` in the upper half.
    pub state: U64,
    /// Incremented by the node while it is alive.
    pub heartbeat: U64,
    /// Incremented on every boot; 0 before the first one.
    pub epoch: U64,
    /// Faults the node detected in peers' words.
    pub faults: U64,
    /// Zero; pads the line.
    pub reserved: [U64; 12],
}

/// Connect words one end of one channel writes (in its node's section).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct EndControl {
    /// `LinkState` tagged with `LINK_TAG`; written last (Release).
    pub state: U64,
    /// The writer's node epoch when it wrote this hello.
    pub epoch: U64,
    /// Feature bits the writer supports.
    pub features: U64,
    /// Largest message the writer sends (producer) or takes (consumer).
    pub max_message: U64,
    /// The writer's message type, [`MessageType::to_wire`](crate::MessageType::to_wire).
    pub message_type: [U64; 2],
    /// The writer's ABI version.
    pub abi_version: U64,
    /// The writer's layout hash.
    pub layout_hash: U64,
    /// Consumer: the producer epoch it accepted.
    pub peer_epoch: U64,
    /// Consumer: the feature bits both ends use.
    pub agreed_features: U64,
    /// Consumer: the last producer epoch whose ring state it reclaimed.
    pub reclaimed_epoch: U64,
    /// Consumer: the position the producer's next incarnation resumes at.
    pub resume_at: U64,
    /// Events written into this end's flight recorder (free-running).
    pub events: U64,
    /// Faults this end detected in its peer's words.
    pub faults: U64,
    /// Zero.
    pub reserved: [U64; 2],
}

/// One flight-recorder event.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct EventRecord {
    /// `index + 1` once the event is complete; written last.
    pub seq: U64,
    /// `EventKind` as a number.
    pub kind: U32,
    /// Zero.
    pub pad: U32,
    /// The writer's epoch when it recorded the event.
    pub epoch: U64,
    /// Event detail (peer epoch, fault count, feature bits ...).
    pub value: U64,
}

/// Bytes of one end's block in a node section: connect words, then the recorder.
pub const END_BLOCK: usize = size_of::<EndControl>() + RECORDER_LEN * size_of::<EventRecord>();

const _: () = {
    assert!(size_of::<ManifestHeader>() == CACHE_LINE);
    assert!(offset_of!(ManifestHeader, node_count) == 8);
    assert!(offset_of!(ManifestHeader, section_align) == 24);
    assert!(offset_of!(ManifestHeader, nodes_offset) == 32);
    assert!(offset_of!(ManifestHeader, checksum) == 80);
    assert!(size_of::<NodeEntry>() == 64);
    assert!(offset_of!(NodeEntry, name) == 8);
    assert!(offset_of!(NodeEntry, section_offset) == 40);
    assert!(size_of::<ChannelEntry>() == CACHE_LINE);
    assert!(offset_of!(ChannelEntry, kind) == 32);
    assert!(offset_of!(ChannelEntry, offset) == 56);
    assert!(offset_of!(ChannelEntry, message_type) == 72);
    assert!(size_of::<GrantEntry>() == 16);
    assert!(size_of::<NodeControl>() == CACHE_LINE);
    assert!(offset_of!(NodeControl, heartbeat) == 8);
    assert!(offset_of!(NodeControl, epoch) == 16);
    assert!(size_of::<EndControl>() == CACHE_LINE);
    assert!(offset_of!(EndControl, peer_epoch) == 64);
    assert!(offset_of!(EndControl, reclaimed_epoch) == 80);
    assert!(offset_of!(EndControl, resume_at) == 88);
    assert!(offset_of!(EndControl, events) == 96);
    assert!(size_of::<EventRecord>() == 32);
    assert!(RECORDER_LEN.is_power_of_two());
    assert!(END_BLOCK.is_multiple_of(CACHE_LINE));
};

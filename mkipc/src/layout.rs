//! The wire format: every structure that lives in shared memory.
//!
//! Rules (see DESIGN.md): `#[repr(C)]`, fixed-width little-endian fields, explicit
//! padding, no pointers (offsets only), sizes and offsets asserted at compile time,
//! and a [`LAYOUT_HASH`] over all of it in the region header, so that two builds
//! that disagree about the layout refuse to talk.
//!
//! These structs describe offsets and are copied in and out whole at set-up time.
//! Words that change while a channel runs (indices, stamps) are never accessed
//! through these structs, only through [`Region`](crate::Region) atomics at the
//! offsets given here.

use core::mem::{offset_of, size_of};

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::manifest::wire::{
    ChannelEntry, EndControl, EventRecord, GrantEntry, ManifestHeader, NodeControl, NodeEntry,
    RECORDER_LEN,
};

/// Cache-line padding used by the wire format, pinned rather than taken from the
/// compiling target (128 bytes covers adjacent-line prefetch on x86 and Apple M).
pub const CACHE_LINE: usize = 128;

/// Alignment of the sections each side writes, so a platform can map the peer's
/// section read-only.
pub const PAGE: usize = 4096;

/// ABI version of this layout; bumped on any incompatible change.
pub const ABI_VERSION: u32 = 2;

/// `"MKIPCRGN"` read as a little-endian word: the region header magic.
pub const REGION_MAGIC: u64 = u64::from_le_bytes(*b"MKIPCRGN");

/// `"MKIPCSPS"` read as a little-endian word: an SPSC ring descriptor's magic.
pub const SPSC_MAGIC: u64 = u64::from_le_bytes(*b"MKIPCSPS");

/// `"MKIPCMPS"` read as a little-endian word: an MPSC channel descriptor's magic.
pub const MPSC_MAGIC: u64 = u64::from_le_bytes(*b"MKIPCMPS");

/// Most producer lanes one MPSC channel may have (one bit each in a `u64` mask).
pub const MAX_LANES: usize = 64;

/// Header at offset 0 of every region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RegionHeader {
    /// [`REGION_MAGIC`]; written last, so a reader that sees it sees the rest.
    pub magic: U64,
    /// [`ABI_VERSION`] of the writer.
    pub abi_version: U32,
    /// `size_of::<RegionHeader>()` of the writer.
    pub header_size: U32,
    /// [`LAYOUT_HASH`] of the writer.
    pub layout_hash: U64,
    /// Feature bits the writer supports.
    pub features: U64,
    /// Size of the whole region in bytes.
    pub region_size: U64,
    /// Bumped each time the region is (re)initialised.
    pub generation: U64,
    /// Zero; room for later fields.
    pub reserved: [U64; 10],
}

/// Set-up record at the start of every SPSC ring, written once by the creator and
/// validated by both endpoints before they use the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SpscDescriptor {
    /// [`SPSC_MAGIC`]; written last.
    pub magic: U64,
    /// Number of slots: a power of two.
    pub slot_count: U32,
    /// Payload capacity of one slot in bytes (a multiple of 8).
    pub slot_size: U32,
    /// Distance between slots in bytes (header plus payload, rounded up to
    /// `slot_align`).
    pub slot_stride: U32,
    /// Alignment of the ring's sections in bytes (a power of two, at least 128).
    pub section_align: U32,
    /// Offset of the consumer's section from the ring start.
    pub consumer_offset: U64,
    /// Offset of the producer's control words from the ring start.
    pub producer_offset: U64,
    /// Offset of slot 0 from the ring start (inside the producer's section).
    pub slots_offset: U64,
    /// Total size of the ring in bytes.
    pub ring_size: U64,
    /// Alignment of each slot in bytes (a power of two, 8 ..= 4096).
    pub slot_align: U32,
    /// Zero; room for flags.
    pub flags: U32,
    /// Zero; room for later fields.
    pub reserved: [U64; 8],
}

/// `"MKIPCPOL"` read as a little-endian word: a buffer pool descriptor's magic.
pub const POOL_MAGIC: u64 = u64::from_le_bytes(*b"MKIPCPOL");

/// Set-up record at the start of every buffer pool (and typed channel), written
/// once by the creator and validated by both endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct PoolDescriptor {
    /// [`POOL_MAGIC`]; written last.
    pub magic: U64,
    /// Number of buffers (1 ..= `pool::MAX_BUFFERS`).
    pub buffer_count: U32,
    /// Bytes per buffer (a multiple of 8).
    pub buffer_size: U32,
    /// Slots of the submission ring (a power of two).
    pub ring_slots: U32,
    /// Bytes a submission slot carries inline after its [`PoolRecord`].
    pub inline_size: U32,
    /// Alignment of every section of the pool (as for SPSC rings).
    pub section_align: U32,
    /// Zero.
    pub pad: U32,
    /// Offset of the submission ring (sender to receiver) from the pool start.
    pub submit_offset: U64,
    /// Offset of the completion ring (receiver to sender) from the pool start.
    pub completion_offset: U64,
    /// Offset of buffer 0 from the pool start (section-aligned, sender's section).
    pub buffers_offset: U64,
    /// Total size of the pool in bytes.
    pub pool_size: U64,
    /// The channel's message type (`MessageType::to_wire`).
    pub message_type: [U64; 2],
    /// Zero; room for later fields.
    pub reserved: [U64; 6],
}

/// One submission: a pool buffer (or inline bytes) handed to the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct PoolRecord {
    /// Offset of the buffer from the pool's buffer area (a multiple of the buffer
    /// size); zero for inline records.
    pub offset: U64,
    /// Bytes of the message in this buffer (or inline after the record).
    pub len: U32,
    /// `POOL_RECORD_*` bits.
    pub flags: U32,
}

/// [`PoolRecord::flags`]: the bytes follow the record inside the ring slot.
pub const POOL_RECORD_INLINE: u32 = 1;
/// [`PoolRecord::flags`]: another fragment of the same message follows.
pub const POOL_RECORD_MORE: u32 = 2;

/// Words the producer writes (first line of the producer's section).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ProducerControl {
    /// Count of messages published so far (free-running).
    pub tail: U64,
    /// Faults the producer detected in consumer-written words.
    pub faults: U64,
    /// Zero; pads the line.
    pub reserved: [U64; 14],
}

/// Words the consumer writes (first line of the consumer's section).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ConsumerControl {
    /// Count of messages released so far (free-running): slots below it are free.
    pub head: U64,
    /// Non-zero while the consumer is about to sleep and wants a doorbell.
    pub need_wakeup: U64,
    /// Faults the consumer detected in producer-written words.
    pub faults: U64,
    /// Zero; pads the line.
    pub reserved: [U64; 13],
}

/// Set-up record at the start of every MPSC channel, written once by the creator.
///
/// The channel is `lane_count` SPSC rings (lanes) of one geometry, one per producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct MpscDescriptor {
    /// [`MPSC_MAGIC`]; written last.
    pub magic: U64,
    /// Number of producer lanes, 1 ..= [`MAX_LANES`].
    pub lane_count: U32,
    /// Alignment of the channel's and every lane's sections in bytes.
    pub section_align: U32,
    /// Slots per lane (a power of two).
    pub slot_count: U32,
    /// Payload capacity of one slot in bytes.
    pub slot_size: U32,
    /// Offset of the consumer's [`MpscControl`] from the channel start.
    pub control_offset: U64,
    /// Offset of lane 0 from the channel start.
    pub lanes_offset: U64,
    /// Distance between lanes in bytes (one SPSC ring's size).
    pub lane_stride: U64,
    /// Total size of the channel in bytes.
    pub channel_size: U64,
    /// Zero; room for later fields.
    pub reserved: [U64; 9],
}

/// Words the MPSC consumer writes: one line of channel-wide words, then one
/// state word per lane. Producers only read them.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct MpscControl {
    /// Non-zero while the consumer is about to sleep and wants a doorbell from
    /// whichever producer publishes next (one word for the whole channel).
    pub need_wakeup: U64,
    /// Faults the consumer detected in producer-written words, all lanes.
    pub faults: U64,
    /// Bit `i` set: lane `i` is latched faulted.
    pub faulted_lanes: U64,
    /// Zero; pads the line.
    pub reserved: [U64; 13],
    /// Per lane: `epoch << 1 | open`. A producer may attach only to an open lane;
    /// the consumer closes a lane when its producer is fenced and reopens it
    /// under the next epoch after a reset.
    pub lane_state: [U64; MAX_LANES],
}

/// Header of every slot, in the same cache line as the start of its payload.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SlotHeader {
    /// Stamp and length in one word, so publishing a message is one store and
    /// receiving it one load. Low [`STAMP_BITS`] bits: `position + 1` (modulo
    /// 2^40) once the message at `position` is published, otherwise the previous
    /// lap's stamp (or 0 before the first lap). High 24 bits: the length in bytes.
    pub tag: U64,
}

/// Bytes before a slot's payload: 56 payload bytes share the tag's 64-byte line.
pub const SLOT_HEADER: usize = size_of::<SlotHeader>();

/// Bits of a slot tag that hold the stamp; the rest hold the length.
pub const STAMP_BITS: u32 = 40;

/// Default slot alignment: no two slots share a 128-byte adjacent-line prefetch
/// pair (measured: a 64-byte stride costs a round trip an extra invalidation).
/// Streams of back-to-back messages prefer [`MIN_SLOT_ALIGN`] (dense slots).
pub const SLOT_ALIGN: usize = CACHE_LINE;

/// Smallest slot alignment: one word, so every tag is an aligned atomic word.
pub const MIN_SLOT_ALIGN: usize = 8;

// Compile-time layout checks: a change here is a wire-format change.
const _: () = {
    assert!(size_of::<RegionHeader>() == CACHE_LINE);
    assert!(offset_of!(RegionHeader, magic) == 0);
    assert!(offset_of!(RegionHeader, abi_version) == 8);
    assert!(offset_of!(RegionHeader, header_size) == 12);
    assert!(offset_of!(RegionHeader, layout_hash) == 16);
    assert!(offset_of!(RegionHeader, features) == 24);
    assert!(offset_of!(RegionHeader, region_size) == 32);
    assert!(offset_of!(RegionHeader, generation) == 40);

    assert!(size_of::<SpscDescriptor>() == CACHE_LINE);
    assert!(offset_of!(SpscDescriptor, slot_count) == 8);
    assert!(offset_of!(SpscDescriptor, slot_size) == 12);
    assert!(offset_of!(SpscDescriptor, slot_stride) == 16);
    assert!(offset_of!(SpscDescriptor, section_align) == 20);
    assert!(offset_of!(SpscDescriptor, consumer_offset) == 24);
    assert!(offset_of!(SpscDescriptor, producer_offset) == 32);
    assert!(offset_of!(SpscDescriptor, slots_offset) == 40);
    assert!(offset_of!(SpscDescriptor, ring_size) == 48);
    assert!(offset_of!(SpscDescriptor, slot_align) == 56);
    assert!(offset_of!(SpscDescriptor, flags) == 60);

    assert!(size_of::<ProducerControl>() == CACHE_LINE);
    assert!(offset_of!(ProducerControl, tail) == 0);
    assert!(offset_of!(ProducerControl, faults) == 8);

    assert!(size_of::<ConsumerControl>() == CACHE_LINE);
    assert!(offset_of!(ConsumerControl, head) == 0);
    assert!(offset_of!(ConsumerControl, need_wakeup) == 8);
    assert!(offset_of!(ConsumerControl, faults) == 16);

    assert!(SLOT_HEADER == 8);
    assert!(offset_of!(SlotHeader, tag) == 0);
    assert!(STAMP_BITS == 40);

    assert!(size_of::<PoolDescriptor>() == CACHE_LINE);
    assert!(offset_of!(PoolDescriptor, buffer_count) == 8);
    assert!(offset_of!(PoolDescriptor, buffer_size) == 12);
    assert!(offset_of!(PoolDescriptor, ring_slots) == 16);
    assert!(offset_of!(PoolDescriptor, inline_size) == 20);
    assert!(offset_of!(PoolDescriptor, section_align) == 24);
    assert!(offset_of!(PoolDescriptor, submit_offset) == 32);
    assert!(offset_of!(PoolDescriptor, completion_offset) == 40);
    assert!(offset_of!(PoolDescriptor, buffers_offset) == 48);
    assert!(offset_of!(PoolDescriptor, pool_size) == 56);
    assert!(offset_of!(PoolDescriptor, message_type) == 64);

    assert!(size_of::<PoolRecord>() == 16);
    assert!(offset_of!(PoolRecord, offset) == 0);
    assert!(offset_of!(PoolRecord, len) == 8);
    assert!(offset_of!(PoolRecord, flags) == 12);
    assert!(size_of::<MpscDescriptor>() == CACHE_LINE);
    assert!(offset_of!(MpscDescriptor, lane_count) == 8);
    assert!(offset_of!(MpscDescriptor, section_align) == 12);
    assert!(offset_of!(MpscDescriptor, slot_count) == 16);
    assert!(offset_of!(MpscDescriptor, slot_size) == 20);
    assert!(offset_of!(MpscDescriptor, control_offset) == 24);
    assert!(offset_of!(MpscDescriptor, lanes_offset) == 32);
    assert!(offset_of!(MpscDescriptor, lane_stride) == 40);
    assert!(offset_of!(MpscDescriptor, channel_size) == 48);

    assert!(size_of::<MpscControl>() == CACHE_LINE + 8 * MAX_LANES);
    assert!(offset_of!(MpscControl, need_wakeup) == 0);
    assert!(offset_of!(MpscControl, faults) == 8);
    assert!(offset_of!(MpscControl, faulted_lanes) == 16);
    assert!(offset_of!(MpscControl, lane_state) == CACHE_LINE);
};

/// Folds bytes into a 64-bit FNV-1a hash (usable in constants).
pub(crate) const fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Folds a name, an offset and a size into the hash.
const fn fold(hash: u64, name: &str, offset: usize, size: usize) -> u64 {
    let hash = fnv1a(hash, name.as_bytes());
    let hash = fnv1a(hash, &(offset as u64).to_le_bytes());
    fnv1a(hash, &(size as u64).to_le_bytes())
}

/// Every field of every wire struct, with the compiler's own offsets and sizes.
macro_rules! layout_fields {
    ($($ty:ident { $($field:ident : $fty:ty),* $(,)? })*) => {
        const fn layout_hash() -> u64 {
            let mut h = fnv1a(0xcbf2_9ce4_8422_2325, b"mkipc");
            h = fold(h, "abi", ABI_VERSION as usize, 0);
            h = fold(h, "cache_line", CACHE_LINE, PAGE);
            h = fold(h, "slot_align", SLOT_ALIGN, SLOT_HEADER);
            h = fold(h, "stamp_bits", STAMP_BITS as usize, MIN_SLOT_ALIGN);
            h = fold(h, "recorder_len", RECORDER_LEN, 0);
            $(
                h = fold(h, stringify!($ty), 0, size_of::<$ty>());
                $( h = fold(h, stringify!($field), offset_of!($ty, $field), size_of::<$fty>()); )*
            )*
            h
        }
    };
}

layout_fields! {
    RegionHeader { magic: U64, abi_version: U32, header_size: U32, layout_hash: U64,
                   features: U64, region_size: U64, generation: U64, reserved: [U64; 10] }
    SpscDescriptor { magic: U64, slot_count: U32, slot_size: U32, slot_stride: U32,
                     section_align: U32, consumer_offset: U64, producer_offset: U64,
                     slots_offset: U64, ring_size: U64, slot_align: U32, flags: U32,
                     reserved: [U64; 8] }
    ProducerControl { tail: U64, faults: U64, reserved: [U64; 14] }
    ConsumerControl { head: U64, need_wakeup: U64, faults: U64, reserved: [U64; 13] }
    SlotHeader { tag: U64 }
    PoolDescriptor { magic: U64, buffer_count: U32, buffer_size: U32, ring_slots: U32,
                     inline_size: U32, section_align: U32, pad: U32, submit_offset: U64,
                     completion_offset: U64, buffers_offset: U64, pool_size: U64,
                     message_type: [U64; 2], reserved: [U64; 6] }
    PoolRecord { offset: U64, len: U32, flags: U32 }
    MpscDescriptor { magic: U64, lane_count: U32, section_align: U32, slot_count: U32,
                     slot_size: U32, control_offset: U64, lanes_offset: U64,
                     lane_stride: U64, channel_size: U64, reserved: [U64; 9] }
    MpscControl { need_wakeup: U64, faults: U64, faulted_lanes: U64, reserved: [U64; 13],
                  lane_state: [U64; MAX_LANES] }
    ManifestHeader { magic: U64, node_count: U32, channel_count: U32, grant_count: U32,
                     ends_per_node: U32, section_align: U32, pad: U32, nodes_offset: U64,
                     channels_offset: U64, grants_offset: U64, sections_offset: U64,
                     section_size: U64, data_offset: U64, checksum: U64, reserved: [U64; 5] }
    NodeEntry { id: U32, flags: U32, name: [u8; 32], section_offset: U64, reserved: [U64; 2] }
    ChannelEntry { name: [u8; 32], kind: U32, max_producers: U32, slot_count: U32,
                   slot_size: U32, section_align: U32, max_message: U32, offset: U64,
                   size: U64, message_type: [U64; 2], reserved: [U64; 5] }
    GrantEntry { node: U32, channel: U32, end: U32, rights: U32 }
    NodeControl { state: U64, heartbeat: U64, epoch: U64, faults: U64, reserved: [U64; 12] }
    EndControl { state: U64, epoch: U64, features: U64, max_message: U64,
                 message_type: [U64; 2], abi_version: U64, layout_hash: U64, peer_epoch: U64,
                 agreed_features: U64, reclaimed_epoch: U64, resume_at: U64, events: U64,
                 faults: U64, reserved: [U64; 2] }
    EventRecord { seq: U64, kind: U32, pad: U32, epoch: U64, value: U64 }
}

/// Hash of the whole wire layout; two builds connect only when theirs are equal.
pub const LAYOUT_HASH: u64 = layout_hash();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_hash_is_stable_and_non_trivial() {
        assert_ne!(LAYOUT_HASH, 0);
        assert_eq!(LAYOUT_HASH, layout_hash());
        // A different field offset must change the hash.
        assert_ne!(
            fold(1, "tail", 0, 8),
            fold(1, "tail", 8, 8),
            "offsets are part of the hash"
        );
    }

    #[test]
    fn magics_spell_their_names() {
        assert_eq!(&REGION_MAGIC.to_le_bytes(), b"MKIPCRGN");
        assert_eq!(&SPSC_MAGIC.to_le_bytes(), b"MKIPCSPS");
        assert_eq!(&POOL_MAGIC.to_le_bytes(), b"MKIPCPOL");
        assert_eq!(&MPSC_MAGIC.to_le_bytes(), b"MKIPCMPS");
    }
}

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
pub const ABI_VERSION: u32 = 1;

/// `"MKIPCRGN"` read as a little-endian word: the region header magic.
pub const REGION_MAGIC: u64 = u64::from_le_bytes(*b"MKIPCRGN");

/// `"MKIPCSPS"` read as a little-endian word: an SPSC ring descriptor's magic.
pub const SPSC_MAGIC: u64 = u64::from_le_bytes(*b"MKIPCSPS");

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
    /// Distance between slots in bytes (header plus payload, rounded to 128).
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
    /// Zero; room for later fields.
    pub reserved: [U64; 9],
}

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

/// Header of every slot, in the same cache line as the start of its payload.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SlotHeader {
    /// `position + 1` once the message at `position` is published; otherwise the
    /// previous lap's stamp (or 0 before the first lap).
    pub stamp: U64,
    /// Length of the message in bytes.
    pub len: U64,
}

/// Bytes before a slot's payload.
pub const SLOT_HEADER: usize = size_of::<SlotHeader>();

/// Slots are padded to this: a small message and its stamp share one 64-byte line,
/// and no two slots share a 128-byte adjacent-line prefetch pair (measured: a
/// 64-byte stride costs the consumer an extra invalidation per message).
pub const SLOT_ALIGN: usize = CACHE_LINE;

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

    assert!(size_of::<ProducerControl>() == CACHE_LINE);
    assert!(offset_of!(ProducerControl, tail) == 0);
    assert!(offset_of!(ProducerControl, faults) == 8);

    assert!(size_of::<ConsumerControl>() == CACHE_LINE);
    assert!(offset_of!(ConsumerControl, head) == 0);
    assert!(offset_of!(ConsumerControl, need_wakeup) == 8);
    assert!(offset_of!(ConsumerControl, faults) == 16);

    assert!(SLOT_HEADER == 16);
    assert!(offset_of!(SlotHeader, stamp) == 0);
    assert!(offset_of!(SlotHeader, len) == 8);
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
                     slots_offset: U64, ring_size: U64, reserved: [U64; 9] }
    ProducerControl { tail: U64, faults: U64, reserved: [U64; 14] }
    ConsumerControl { head: U64, need_wakeup: U64, faults: U64, reserved: [U64; 13] }
    SlotHeader { stamp: U64, len: U64 }
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
    }
}

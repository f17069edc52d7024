//! The region manifest: which nodes share the region, which channels live in it,
//! and who may use which channel end.
//!
//! The owner of the partitioning writes it once with [`ManifestBuilder`], right after
//! the region header; every other node opens it with [`Manifest::open`], which checks
//! every count, offset, name and grant (and a checksum over the tables) and returns a
//! [`ManifestError`] naming the first thing wrong. Entries are re-read and re-checked
//! one by one on each lookup, so a manifest altered after `open` can at worst describe
//! another valid-looking layout, never send an access outside the region.
//!
//! ```text
//!  0x0000  RegionHeader (128 B)                                   owner, once
//!  0x0080  ManifestHeader (128 B), magic last                     owner, once
//!  0x0100  NodeEntry    x node_count    (64 B each)               owner, once
//!          ChannelEntry x channel_count (128 B each)              owner, once
//!          GrantEntry   x grant_count   (16 B each)               owner, once
//!  align   node 0 section | node 1 section | ...                  each node its own
//!            +0    NodeControl: state, heartbeat, epoch, faults
//!            +128  end block k (one per grant the node holds, in grant order):
//!                  EndControl (connect words) | 16 x EventRecord (flight recorder)
//!  align   channel 0 storage | channel 1 storage | ...            per channel layout
//! ```

mod build;
mod name;
mod read;
pub mod wire;

pub use build::{BuildError, ChannelSpec, GrantSpec, ManifestBuilder, NodeSpec};
pub use name::{Name, NameError};
pub use read::{ChannelInfo, GrantInfo, Manifest, ManifestError, NodeInfo};

use core::fmt;
use core::mem::size_of;

use crate::layout::{CACHE_LINE, RegionHeader};
use wire::{ChannelEntry, END_BLOCK, GrantEntry, ManifestHeader, NodeControl, NodeEntry};

/// Region offset of the manifest header (right after the region header).
pub const MANIFEST_OFFSET: usize = size_of::<RegionHeader>();
/// Most nodes a manifest may list.
pub const MAX_NODES: u32 = 64;
/// Most channels a manifest may list.
pub const MAX_CHANNELS: u32 = 1024;
/// Most grants a manifest may list.
pub const MAX_GRANTS: u32 = 4096;
/// Most channel ends one node may hold.
pub const MAX_ENDS_PER_NODE: u32 = 256;
/// Most producers an MPSC channel may admit.
pub const MAX_PRODUCERS: u32 = 64;

/// What a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Single producer, single consumer ring ([`crate::spsc`]); the builder formats it.
    Spsc,
    /// Multi-producer ring; the builder reserves and zeroes its storage, the MPSC
    /// module formats it.
    Mpsc,
    /// Buffer pool; the builder reserves and zeroes its storage, the pool module
    /// formats it.
    Pool,
}

impl ChannelKind {
    /// The stored form.
    pub const fn to_wire(self) -> u32 {
        match self {
            ChannelKind::Spsc => 1,
            ChannelKind::Mpsc => 2,
            ChannelKind::Pool => 3,
        }
    }

    /// Decodes a stored kind.
    pub const fn from_wire(v: u32) -> Option<ChannelKind> {
        match v {
            1 => Some(ChannelKind::Spsc),
            2 => Some(ChannelKind::Mpsc),
            3 => Some(ChannelKind::Pool),
            _ => None,
        }
    }
}

/// Which end of a channel a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The receiving end.
    Consumer,
    /// The (or a) sending end.
    Producer,
}

impl End {
    /// The stored form.
    pub const fn to_wire(self) -> u32 {
        match self {
            End::Consumer => 0,
            End::Producer => 1,
        }
    }

    /// Decodes a stored end.
    pub const fn from_wire(v: u32) -> Option<End> {
        match v {
            0 => Some(End::Consumer),
            1 => Some(End::Producer),
            _ => None,
        }
    }
}

/// What a node may do with a channel end (a bitmask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rights(u32);

impl Rights {
    /// Push messages (producer ends).
    pub const SEND: Rights = Rights(1);
    /// Pop messages (consumer ends).
    pub const RECEIVE: Rights = Rights(2);
    /// Loan buffers from the channel's pool.
    pub const LOAN: Rights = Rights(4);
    /// Reclaim and reset the channel after a peer's death.
    pub const ADMIN: Rights = Rights(8);
    /// Every defined right.
    pub const ALL: Rights = Rights(15);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Rights from raw bits, if every bit is defined.
    pub const fn from_bits(bits: u32) -> Option<Rights> {
        if bits & !Rights::ALL.0 == 0 {
            Some(Rights(bits))
        } else {
            None
        }
    }

    /// Whether every right in `other` is in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
}

impl core::ops::BitOr for Rights {
    type Output = Rights;
    fn bitor(self, rhs: Rights) -> Rights {
        self.union(rhs)
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [(1, "send"), (2, "receive"), (4, "loan"), (8, "admin")];
        let mut first = true;
        for (bit, name) in names {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Where the tables and node sections of a manifest lie, derived from its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tables {
    pub nodes: usize,
    pub channels: usize,
    pub grants: usize,
    pub end: usize,
    pub sections: usize,
    pub section_size: usize,
    pub data: usize,
}

impl Tables {
    /// The layout for these counts, or `None` if a count is above its limit or the
    /// alignment is not a power of two in 128 ..= 2 MiB.
    pub(crate) fn new(
        nodes: u32,
        channels: u32,
        grants: u32,
        ends_per_node: u32,
        align: u32,
    ) -> Option<Tables> {
        if nodes > MAX_NODES
            || channels > MAX_CHANNELS
            || grants > MAX_GRANTS
            || ends_per_node > MAX_ENDS_PER_NODE
            || !align.is_power_of_two()
            || (align as usize) < CACHE_LINE
            || align > 2 << 20
        {
            return None;
        }
        let align = align as usize;
        let node_table = MANIFEST_OFFSET + size_of::<ManifestHeader>();
        let channel_table = node_table + nodes as usize * size_of::<NodeEntry>();
        let grant_table = channel_table + channels as usize * size_of::<ChannelEntry>();
        let end = grant_table + grants as usize * size_of::<GrantEntry>();
        let sections = end.next_multiple_of(align);
        let section_size =
            (size_of::<NodeControl>() + ends_per_node as usize * END_BLOCK).next_multiple_of(align);
        Some(Tables {
            nodes: node_table,
            channels: channel_table,
            grants: grant_table,
            end,
            sections,
            section_size,
            data: sections + nodes as usize * section_size,
        })
    }
}

/// Region offset of end block `slot` in the node section starting at `section`.
pub(crate) const fn end_block(section: usize, slot: u32) -> usize {
    section + size_of::<NodeControl>() + slot as usize * END_BLOCK
}

/// The manifest checksum over the region words in `range` (the node, channel and
/// grant tables): FNV-1a over their little-endian bytes. The owner records it in
/// the manifest header; readers recompute and compare.
pub fn checksum(
    region: &crate::Region,
    range: core::ops::Range<usize>,
) -> Result<u64, crate::AccessError> {
    let words = range.len() / crate::WORD;
    region.fold_words(range.start, words, 0xcbf2_9ce4_8422_2325, |hash, word| {
        crate::layout::fnv1a(hash, &word.to_le_bytes())
    })
}

#[cfg(all(test, feature = "alloc"))]
mod tests;

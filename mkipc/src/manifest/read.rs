//! Opening a manifest: read once, validate everything, look entries up.

use core::fmt;
use core::mem::size_of;

use zerocopy::FromBytes;

use super::wire::{ChannelEntry, GrantEntry, MANIFEST_MAGIC, ManifestHeader, NodeEntry};
use super::{
    ChannelKind, End, MANIFEST_OFFSET, MAX_PRODUCERS, Name, NameError, Rights, Tables, checksum,
    end_block,
};
use crate::MessageType;
use crate::header::{HeaderError, read_header};
use crate::shm::{AccessError, Region};
use crate::spsc::Geometry;
use crate::sync::Ordering;

/// Why a manifest was refused, or a lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestError {
    /// The region header is missing or refused (wrong magic, version or layout).
    Header(HeaderError),
    /// A region access failed.
    Access(AccessError),
    /// No manifest yet: its owner has not written it (or wrote zeros).
    NotInitialized,
    /// The manifest magic is wrong.
    BadMagic {
        /// The word found.
        found: u64,
    },
    /// A count, alignment or table offset in the manifest header is impossible.
    BadHeader {
        /// Which field.
        field: &'static str,
        /// The value found.
        found: u64,
        /// The value (or limit) expected.
        expected: u64,
    },
    /// The tables do not hash to the recorded checksum: torn or altered.
    Checksum {
        /// Recorded in the header.
        recorded: u64,
        /// Computed over the tables.
        computed: u64,
    },
    /// A stored name is invalid.
    BadName {
        /// `"node"` or `"channel"`.
        table: &'static str,
        /// Entry index.
        index: u32,
        /// What is wrong with it.
        error: NameError,
    },
    /// Two entries share a name or id.
    Duplicate {
        /// `"node id"`, `"channel name"` or `"grant"`.
        what: &'static str,
        /// Index of the second entry.
        index: u32,
    },
    /// A field of one entry is invalid.
    BadEntry {
        /// `"node"`, `"channel"` or `"grant"`.
        table: &'static str,
        /// Entry index.
        index: u32,
        /// Which field.
        field: &'static str,
        /// The value found.
        found: u64,
    },
    /// A channel's storage overlaps the previous channel or leaves the region.
    Misplaced {
        /// Channel index.
        index: u32,
        /// Its offset.
        offset: u64,
        /// Its size.
        size: u64,
    },
    /// No channel has this name.
    NoSuchChannel,
    /// No node has this id.
    NoSuchNode {
        /// The id asked for.
        id: u32,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ManifestError::Header(e) => write!(f, "{e}"),
            ManifestError::Access(e) => write!(f, "cannot read the manifest: {e}"),
            ManifestError::NotInitialized => write!(
                f,
                "the region has no manifest yet; its owner must write it first"
            ),
            ManifestError::BadMagic { found } => write!(
                f,
                "no manifest after the region header: magic {found:#018x}, expected {MANIFEST_MAGIC:#018x}"
            ),
            ManifestError::BadHeader {
                field,
                found,
                expected,
            } => write!(
                f,
                "manifest header field `{field}` is {found}, expected {expected}; the manifest is corrupt"
            ),
            ManifestError::Checksum { recorded, computed } => write!(
                f,
                "manifest checksum {computed:#018x} does not match the recorded {recorded:#018x}; \
                 the tables were altered or torn, rewrite the manifest"
            ),
            ManifestError::BadName {
                table,
                index,
                error,
            } => write!(f, "{table} {index}: {error}"),
            ManifestError::Duplicate { what, index } => {
                write!(f, "entry {index} repeats a {what} used by an earlier entry")
            }
            ManifestError::BadEntry {
                table,
                index,
                field,
                found,
            } => write!(
                f,
                "{table} {index}: field `{field}` holds invalid value {found}"
            ),
            ManifestError::Misplaced {
                index,
                offset,
                size,
            } => write!(
                f,
                "channel {index} at {offset:#x} (+{size:#x}) overlaps another channel or leaves the region"
            ),
            ManifestError::NoSuchChannel => {
                write!(
                    f,
                    "no channel of that name in the manifest; check its spelling"
                )
            }
            ManifestError::NoSuchNode { id } => write!(f, "no node with id {id} in the manifest"),
        }
    }
}

impl core::error::Error for ManifestError {}

impl From<AccessError> for ManifestError {
    fn from(e: AccessError) -> Self {
        ManifestError::Access(e)
    }
}

impl From<HeaderError> for ManifestError {
    fn from(e: HeaderError) -> Self {
        ManifestError::Header(e)
    }
}

/// A validated node entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    /// Position in the node table.
    pub index: u32,
    /// The node's id.
    pub id: u32,
    /// The node's name.
    pub name: Name,
    /// Region offset of the node's own section.
    pub section: usize,
}

/// A validated channel entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Position in the channel table.
    pub index: u32,
    /// The channel's name.
    pub name: Name,
    /// What it is.
    pub kind: ChannelKind,
    /// Producer ends it admits.
    pub max_producers: u32,
    /// Slot count, slot size and section alignment.
    pub geometry: Geometry,
    /// Largest message either end may send.
    pub max_message: u32,
    /// Region offset of its storage.
    pub offset: usize,
    /// Bytes of storage.
    pub size: usize,
    /// The message type it carries.
    pub message_type: MessageType,
}

/// A validated grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantInfo {
    /// Position in the grant table.
    pub index: u32,
    /// Node table index of the holder.
    pub node: u32,
    /// Channel table index.
    pub channel: u32,
    /// Which end.
    pub end: End,
    /// What the holder may do.
    pub rights: Rights,
    /// Region offset of the end's block (connect words, then flight recorder) in
    /// the holder's section.
    pub end_block: usize,
}

/// An opened, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    region: Region,
    header: ManifestHeader,
    tables: Tables,
}

impl Manifest {
    /// Reads the region header and the manifest once and validates all of it.
    pub fn open(region: &Region) -> Result<Manifest, ManifestError> {
        read_header(region)?;
        region.check(MANIFEST_OFFSET, size_of::<ManifestHeader>())?;
        // Acquire: pairs with the Release store of the magic in `descriptor::publish`
        // (from `ManifestBuilder::write`):
        // a reader that sees the magic sees the tables and the zeroed sections.
        match region.load(MANIFEST_OFFSET, Ordering::Acquire)? {
            0 => return Err(ManifestError::NotInitialized),
            MANIFEST_MAGIC => {}
            found => return Err(ManifestError::BadMagic { found }),
        }
        let mut bytes = [0u8; size_of::<ManifestHeader>()];
        region.copy_out(MANIFEST_OFFSET, &mut bytes)?;
        let mut header =
            ManifestHeader::read_from_bytes(&bytes).map_err(|_| ManifestError::NotInitialized)?;
        header.magic.set(MANIFEST_MAGIC);
        let tables = validate_header(&header, region.len())?;
        let recorded = header.checksum.get();
        let computed = checksum(region, tables.nodes..tables.end)?;
        if computed != recorded {
            return Err(ManifestError::Checksum { recorded, computed });
        }
        let manifest = Manifest {
            region: region.clone(),
            header,
            tables,
        };
        manifest.validate_tables()?;
        Ok(manifest)
    }

    /// Where the tables and sections lie.
    #[cfg(test)]
    pub(crate) fn tables(&self) -> Tables {
        self.tables
    }

    /// The region the manifest describes.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Number of nodes.
    pub fn node_count(&self) -> u32 {
        self.header.node_count.get()
    }

    /// Number of channels.
    pub fn channel_count(&self) -> u32 {
        self.header.channel_count.get()
    }

    /// Number of grants.
    pub fn grant_count(&self) -> u32 {
        self.header.grant_count.get()
    }

    /// Bytes per node section.
    pub fn section_size(&self) -> usize {
        self.tables.section_size
    }

    /// Region range of node `index`'s own section (what a platform maps writable
    /// for that node only).
    pub fn node_section(&self, index: u32) -> Result<core::ops::Range<usize>, ManifestError> {
        let node = self.node(index)?;
        Ok(node.section..node.section + self.tables.section_size)
    }

    /// Node `index`, re-read and re-checked.
    pub fn node(&self, index: u32) -> Result<NodeInfo, ManifestError> {
        let bad = |field, found: u64| ManifestError::BadEntry {
            table: "node",
            index,
            field,
            found,
        };
        if index >= self.node_count() {
            return Err(bad("index", index.into()));
        }
        let e: NodeEntry = self.entry(self.tables.nodes, index)?;
        let name = Name::from_wire(e.name).map_err(|error| ManifestError::BadName {
            table: "node",
            index,
            error,
        })?;
        if e.flags.get() != 0 {
            return Err(bad("flags", e.flags.get().into()));
        }
        let section = self.tables.sections + index as usize * self.tables.section_size;
        if e.section_offset.get() != section as u64 {
            return Err(bad("section_offset", e.section_offset.get()));
        }
        Ok(NodeInfo {
            index,
            id: e.id.get(),
            name,
            section,
        })
    }

    /// Channel `index`, re-read and re-checked.
    pub fn channel(&self, index: u32) -> Result<ChannelInfo, ManifestError> {
        if index >= self.channel_count() {
            return Err(ManifestError::BadEntry {
                table: "channel",
                index,
                field: "index",
                found: index.into(),
            });
        }
        let e: ChannelEntry = self.entry(self.tables.channels, index)?;
        check_channel(
            &e,
            index,
            &self.tables,
            self.header.section_align.get(),
            self.region.len(),
        )
    }

    /// Grant `index`, re-read and re-checked, with its end block located.
    pub fn grant(&self, index: u32) -> Result<GrantInfo, ManifestError> {
        let e = self.grant_entry(index)?;
        let node = self.node(e.node.get())?;
        // The end block is the holder's k-th: count its earlier grants.
        let mut slot = 0u32;
        for earlier in 0..index {
            if self.grant_entry(earlier)?.node == e.node {
                slot += 1;
            }
        }
        if slot >= self.header.ends_per_node.get() {
            return Err(ManifestError::BadEntry {
                table: "grant",
                index,
                field: "node",
                found: e.node.get().into(),
            });
        }
        Ok(GrantInfo {
            index,
            node: e.node.get(),
            channel: e.channel.get(),
            end: End::from_wire(e.end.get()).unwrap_or(End::Consumer),
            rights: Rights::from_bits(e.rights.get()).unwrap_or(Rights(0)),
            end_block: end_block(node.section, slot),
        })
    }

    /// The channel named `name`.
    pub fn find_channel(&self, name: &str) -> Result<ChannelInfo, ManifestError> {
        let wanted = Name::new(name).map_err(|_| ManifestError::NoSuchChannel)?;
        for index in 0..self.channel_count() {
            let e: ChannelEntry = self.entry(self.tables.channels, index)?;
            if e.name == wanted.to_wire() {
                return self.channel(index);
            }
        }
        Err(ManifestError::NoSuchChannel)
    }

    /// The node with id `id`.
    pub fn find_node(&self, id: u32) -> Result<NodeInfo, ManifestError> {
        for index in 0..self.node_count() {
            let node = self.node(index)?;
            if node.id == id {
                return Ok(node);
            }
        }
        Err(ManifestError::NoSuchNode { id })
    }

    /// The node named `name`, if there is one.
    pub fn find_node_named(&self, name: &str) -> Result<Option<NodeInfo>, ManifestError> {
        for index in 0..self.node_count() {
            let node = self.node(index)?;
            if node.name.as_str() == name {
                return Ok(Some(node));
            }
        }
        Ok(None)
    }

    /// The grants of `channel` at `end`, in table order, calling `f` on each until it
    /// returns `Some`.
    pub fn find_grant<T>(
        &self,
        channel: u32,
        mut f: impl FnMut(&GrantInfo) -> Option<T>,
    ) -> Result<Option<T>, ManifestError> {
        for index in 0..self.grant_count() {
            let e = self.grant_entry(index)?;
            if e.channel.get() == channel
                && let Some(found) = f(&self.grant(index)?)
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The grant node `node` holds for `end` of `channel`, if any.
    pub fn grant_of(
        &self,
        node: u32,
        channel: u32,
        end: End,
    ) -> Result<Option<GrantInfo>, ManifestError> {
        self.find_grant(channel, |g| (g.node == node && g.end == end).then_some(*g))
    }

    fn grant_entry(&self, index: u32) -> Result<GrantEntry, ManifestError> {
        let bad = |field, found: u64| ManifestError::BadEntry {
            table: "grant",
            index,
            field,
            found,
        };
        if index >= self.grant_count() {
            return Err(bad("index", index.into()));
        }
        let e: GrantEntry = self.entry(self.tables.grants, index)?;
        if e.node.get() >= self.node_count() {
            return Err(bad("node", e.node.get().into()));
        }
        if e.channel.get() >= self.channel_count() {
            return Err(bad("channel", e.channel.get().into()));
        }
        let end = End::from_wire(e.end.get()).ok_or(bad("end", e.end.get().into()))?;
        let rights = Rights::from_bits(e.rights.get())
            .filter(|r| r.bits() != 0)
            .ok_or(bad("rights", e.rights.get().into()))?;
        let wrong_way = match end {
            End::Consumer => rights.contains(Rights::SEND),
            End::Producer => rights.contains(Rights::RECEIVE),
        };
        if wrong_way {
            return Err(bad("rights", rights.bits().into()));
        }
        Ok(e)
    }

    /// Copies entry `index` of the table at `table` out of the region.
    fn entry<T: FromBytes>(&self, table: usize, index: u32) -> Result<T, ManifestError> {
        let mut bytes = [0u8; 128];
        let size = size_of::<T>();
        let buf = &mut bytes[..size];
        self.region.copy_out(table + index as usize * size, buf)?;
        T::read_from_bytes(buf).map_err(|_| ManifestError::NotInitialized)
    }

    /// Cross-entry checks: every entry valid, unique names and ids, channels in
    /// order without overlap, grants unique and within each channel's ends.
    fn validate_tables(&self) -> Result<(), ManifestError> {
        for i in 0..self.node_count() {
            let node = self.node(i)?;
            for j in 0..i {
                if self.node(j)?.id == node.id {
                    return Err(ManifestError::Duplicate {
                        what: "node id",
                        index: i,
                    });
                }
            }
        }
        let mut end = self.tables.data;
        for i in 0..self.channel_count() {
            let ch = self.channel(i)?;
            if ch.offset < end {
                return Err(ManifestError::Misplaced {
                    index: i,
                    offset: ch.offset as u64,
                    size: ch.size as u64,
                });
            }
            end = ch.offset + ch.size;
            for j in 0..i {
                if self.channel(j)?.name == ch.name {
                    return Err(ManifestError::Duplicate {
                        what: "channel name",
                        index: i,
                    });
                }
            }
        }
        for i in 0..self.grant_count() {
            let g = self.grant(i)?;
            let ch = self.channel(g.channel)?;
            let mut same_end = 0u32;
            for j in 0..i {
                let other = self.grant_entry(j)?;
                if other.channel.get() != g.channel || other.end.get() != g.end.to_wire() {
                    continue;
                }
                if other.node.get() == g.node {
                    return Err(ManifestError::Duplicate {
                        what: "grant",
                        index: i,
                    });
                }
                same_end += 1;
            }
            let allowed = match g.end {
                End::Producer => ch.max_producers,
                End::Consumer => 1,
            };
            if same_end >= allowed {
                return Err(ManifestError::BadEntry {
                    table: "grant",
                    index: i,
                    field: "end",
                    found: g.end.to_wire().into(),
                });
            }
        }
        Ok(())
    }
}

/// Checks the header's counts and offsets against the layout they imply.
fn validate_header(h: &ManifestHeader, region_len: usize) -> Result<Tables, ManifestError> {
    let bad = |field, found: u64, expected: u64| ManifestError::BadHeader {
        field,
        found,
        expected,
    };
    let t = Tables::new(
        h.node_count.get(),
        h.channel_count.get(),
        h.grant_count.get(),
        h.ends_per_node.get(),
        h.section_align.get(),
    )
    .ok_or(bad("counts or section_align", 0, 0))?;
    let expect = |field, found: u64, expected: usize| {
        if found == expected as u64 {
            Ok(())
        } else {
            Err(bad(field, found, expected as u64))
        }
    };
    expect("pad", h.pad.get().into(), 0)?;
    expect("nodes_offset", h.nodes_offset.get(), t.nodes)?;
    expect("channels_offset", h.channels_offset.get(), t.channels)?;
    expect("grants_offset", h.grants_offset.get(), t.grants)?;
    expect("sections_offset", h.sections_offset.get(), t.sections)?;
    expect("section_size", h.section_size.get(), t.section_size)?;
    expect("data_offset", h.data_offset.get(), t.data)?;
    if t.data > region_len {
        return Err(bad("data_offset", t.data as u64, region_len as u64));
    }
    Ok(t)
}

/// Checks one channel entry on its own.
fn check_channel(
    e: &ChannelEntry,
    index: u32,
    t: &Tables,
    manifest_align: u32,
    region_len: usize,
) -> Result<ChannelInfo, ManifestError> {
    let bad = |field, found: u64| ManifestError::BadEntry {
        table: "channel",
        index,
        field,
        found,
    };
    let name = Name::from_wire(e.name).map_err(|error| ManifestError::BadName {
        table: "channel",
        index,
        error,
    })?;
    let kind = ChannelKind::from_wire(e.kind.get()).ok_or(bad("kind", e.kind.get().into()))?;
    // Manifest channels use the default slot alignment.
    let geometry = Geometry {
        section_align: e.section_align.get(),
        ..Geometry::new(e.slot_count.get(), e.slot_size.get())
    };
    let producers = e.max_producers.get();
    let offset = e.offset.get();
    let size = e.size.get();
    match kind {
        ChannelKind::Spsc => {
            if producers != 1 {
                return Err(bad("max_producers", producers.into()));
            }
            let ring = geometry
                .ring_size()
                .map_err(|_| bad("geometry", geometry.slot_count.into()))?;
            if size != ring as u64 {
                return Err(bad("size", size));
            }
        }
        ChannelKind::Mpsc | ChannelKind::Pool => {
            if producers == 0 || producers > MAX_PRODUCERS {
                return Err(bad("max_producers", producers.into()));
            }
            let align = geometry.section_align;
            if !align.is_power_of_two() || !(128..=2 << 20).contains(&align) {
                return Err(bad("section_align", align.into()));
            }
            if geometry.slot_count == 0 || geometry.slot_size == 0 {
                return Err(bad("slot_count", geometry.slot_count.into()));
            }
            if size == 0 || !size.is_multiple_of(8) {
                return Err(bad("size", size));
            }
        }
    }
    let max_message = e.max_message.get();
    if max_message == 0 || max_message > geometry.slot_size {
        return Err(bad("max_message", max_message.into()));
    }
    let message_type = MessageType::from_wire([e.message_type[0].get(), e.message_type[1].get()]);
    if !message_type.align.is_power_of_two() || message_type.size > max_message {
        return Err(bad("message_type", e.message_type[0].get()));
    }
    let align = manifest_align.max(geometry.section_align) as u64;
    let end = offset.checked_add(size);
    if !offset.is_multiple_of(align)
        || offset < t.data as u64
        || end.is_none_or(|e| e > region_len as u64)
    {
        return Err(ManifestError::Misplaced {
            index,
            offset,
            size,
        });
    }
    Ok(ChannelInfo {
        index,
        name,
        kind,
        max_producers: producers,
        geometry,
        max_message,
        offset: offset as usize,
        size: size as usize,
        message_type,
    })
}

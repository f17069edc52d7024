//! Writing a manifest: the owner of the partitioning lays out nodes, channels and
//! grants once, before any node attaches.

use core::fmt;
use core::mem::size_of;

use zerocopy::{FromZeros, IntoBytes};

use super::wire::{ChannelEntry, GrantEntry, MANIFEST_MAGIC, ManifestHeader, NodeEntry};
use super::{
    ChannelKind, End, MANIFEST_OFFSET, MAX_CHANNELS, MAX_ENDS_PER_NODE, MAX_GRANTS, MAX_NODES,
    MAX_PRODUCERS, Manifest, ManifestError, Name, NameError, Rights, Tables, checksum,
};
use crate::MessageType;
use crate::header::write_header;
use crate::layout::PAGE;
use crate::shm::{AccessError, Region};
use crate::spsc::{Geometry, GeometryError, RingError, RingLayout};
use crate::sync::Ordering;

/// A node to list.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec<'a> {
    /// Unique id.
    pub id: u32,
    /// Unique name.
    pub name: &'a str,
}

/// A channel to lay out.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSpec<'a> {
    /// Unique name.
    pub name: &'a str,
    /// What it is.
    pub kind: ChannelKind,
    /// Slot count, slot size, section alignment.
    pub geometry: Geometry,
    /// Producer ends admitted (1 for SPSC).
    pub max_producers: u32,
    /// Largest message (at most the slot size).
    pub max_message: u32,
    /// The message type both ends must agree on.
    pub message_type: MessageType,
    /// Bytes of storage for MPSC and pool channels (their modules format it);
    /// ignored for SPSC, whose size follows from the geometry.
    pub size: usize,
}

impl<'a> ChannelSpec<'a> {
    /// An SPSC channel of byte messages up to the slot size.
    pub fn spsc(name: &'a str, geometry: Geometry) -> Self {
        ChannelSpec {
            name,
            kind: ChannelKind::Spsc,
            geometry,
            max_producers: 1,
            max_message: geometry.slot_size,
            message_type: MessageType::bytes(geometry.slot_size),
            size: 0,
        }
    }

    /// The same channel carrying `message_type` (its size becomes the maximum).
    pub fn carrying(self, message_type: MessageType) -> Self {
        ChannelSpec {
            message_type,
            max_message: message_type.size,
            ..self
        }
    }
}

/// A right to grant.
#[derive(Debug, Clone, Copy)]
pub struct GrantSpec<'a> {
    /// Id of the node receiving the grant.
    pub node: u32,
    /// Name of the channel.
    pub channel: &'a str,
    /// Which end.
    pub end: End,
    /// What the node may do.
    pub rights: Rights,
}

/// Why a manifest could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// More nodes, channels, grants or ends per node than the format allows.
    TooMany {
        /// What.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: u32,
    },
    /// A name is invalid.
    BadName {
        /// `"node"` or `"channel"`.
        what: &'static str,
        /// Index in the spec list.
        index: usize,
        /// What is wrong.
        error: NameError,
    },
    /// Two nodes share an id, two channels a name, or a node holds the same end twice.
    Duplicate {
        /// What is repeated.
        what: &'static str,
        /// Index of the second one.
        index: usize,
    },
    /// A grant names a node id that is not listed.
    UnknownNode {
        /// Grant index.
        grant: usize,
        /// The id.
        id: u32,
    },
    /// A grant names a channel that is not listed.
    UnknownChannel {
        /// Grant index.
        grant: usize,
    },
    /// A grant gives no rights, `send` on a consumer end, or `receive` on a
    /// producer end, or more grants at an end than the channel admits.
    BadGrant {
        /// Grant index.
        grant: usize,
    },
    /// A channel's geometry is invalid.
    Geometry {
        /// Channel index.
        channel: usize,
        /// What is wrong.
        error: GeometryError,
    },
    /// A channel's maximum message, message type, producer count or size is invalid.
    BadChannel {
        /// Channel index.
        channel: usize,
        /// Which field.
        field: &'static str,
    },
    /// The section alignment is not a power of two in 128 ..= 2 MiB.
    BadAlignment(usize),
    /// The region is too small for the layout.
    RegionTooSmall {
        /// Bytes the layout needs.
        needed: usize,
        /// Bytes mapped.
        have: usize,
    },
    /// Formatting an SPSC ring failed.
    Ring(RingError),
    /// A region access failed.
    Access(AccessError),
    /// Reading back what was written failed: a bug in the builder.
    SelfCheck(ManifestError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BuildError::TooMany { what, count, max } => {
                write!(f, "{count} {what} given, the manifest holds at most {max}")
            }
            BuildError::BadName { what, index, error } => write!(f, "{what} {index}: {error}"),
            BuildError::Duplicate { what, index } => {
                write!(f, "entry {index} repeats a {what}; each must be unique")
            }
            BuildError::UnknownNode { grant, id } => {
                write!(f, "grant {grant} names node id {id}, which is not listed")
            }
            BuildError::UnknownChannel { grant } => {
                write!(f, "grant {grant} names a channel that is not listed")
            }
            BuildError::BadGrant { grant } => write!(
                f,
                "grant {grant} is invalid: give at least one right, no `send` on a consumer \
                 end, no `receive` on a producer end, and no more holders than the end admits"
            ),
            BuildError::Geometry { channel, error } => write!(f, "channel {channel}: {error}"),
            BuildError::BadChannel { channel, field } => write!(
                f,
                "channel {channel}: `{field}` is invalid (max_message must be 1..=slot_size and \
                 cover the message type; MPSC/pool channels need 1..={MAX_PRODUCERS} producers \
                 and a non-zero size that is a multiple of 8)"
            ),
            BuildError::BadAlignment(a) => write!(
                f,
                "section alignment {a} is invalid: use a power of two from 128 to 2 MiB"
            ),
            BuildError::RegionTooSmall { needed, have } => write!(
                f,
                "the layout needs {needed} bytes but the region has {have}; map a larger region"
            ),
            BuildError::Ring(e) => write!(f, "formatting a ring: {e}"),
            BuildError::Access(e) => write!(f, "writing the manifest: {e}"),
            BuildError::SelfCheck(e) => write!(f, "the written manifest does not read back: {e}"),
        }
    }
}

impl core::error::Error for BuildError {}

impl From<AccessError> for BuildError {
    fn from(e: AccessError) -> Self {
        BuildError::Access(e)
    }
}

/// Lays out and writes a region: header, manifest, node sections, channels.
#[derive(Debug, Clone, Copy)]
pub struct ManifestBuilder<'a> {
    nodes: &'a [NodeSpec<'a>],
    channels: &'a [ChannelSpec<'a>],
    grants: &'a [GrantSpec<'a>],
    section_align: usize,
}

/// Where each channel goes, computed without writing anything.
struct Placement {
    tables: Tables,
    ends_per_node: u32,
    end: usize,
}

impl<'a> ManifestBuilder<'a> {
    /// A layout of these nodes, channels and grants with page-aligned sections.
    pub fn new(
        nodes: &'a [NodeSpec<'a>],
        channels: &'a [ChannelSpec<'a>],
        grants: &'a [GrantSpec<'a>],
    ) -> Self {
        ManifestBuilder {
            nodes,
            channels,
            grants,
            section_align: PAGE,
        }
    }

    /// Aligns node sections and channels to `align` bytes instead of a page
    /// (128 for a compact layout whose sections cannot be protected separately).
    pub fn section_align(self, align: usize) -> Self {
        ManifestBuilder {
            section_align: align,
            ..self
        }
    }

    /// Bytes of region the layout needs.
    pub fn required_size(&self) -> Result<usize, BuildError> {
        Ok(self.place()?.end)
    }

    /// Writes the region header (with `generation`), the manifest, zeroed node
    /// sections and every SPSC ring, then opens the result as a reader would.
    ///
    /// Only the owner of the partitioning calls this, before any node attaches.
    pub fn write(&self, region: &Region, generation: u64) -> Result<Manifest, BuildError> {
        let plan = self.place()?;
        if plan.end > region.len() {
            return Err(BuildError::RegionTooSmall {
                needed: plan.end,
                have: region.len(),
            });
        }
        let t = &plan.tables;
        write_header(region, generation)?;
        // Hide the old manifest (if any) before touching anything it describes.
        region.store(MANIFEST_OFFSET, 0, Ordering::Relaxed)?;
        region.zero(MANIFEST_OFFSET + 8, t.data - MANIFEST_OFFSET - 8)?;
        for (i, n) in self.nodes.iter().enumerate() {
            let mut e = NodeEntry::new_zeroed();
            e.id.set(n.id);
            e.name = self.node_name(i)?.to_wire();
            e.section_offset
                .set((t.sections + i * t.section_size) as u64);
            region.copy_in(t.nodes + i * size_of::<NodeEntry>(), e.as_bytes())?;
        }
        let mut at = t.data;
        for (i, c) in self.channels.iter().enumerate() {
            let (offset, size) = self.channel_place(i, at)?;
            let mut e = ChannelEntry::new_zeroed();
            e.name = self.channel_name(i)?.to_wire();
            e.kind.set(c.kind.to_wire());
            e.max_producers.set(c.max_producers);
            e.slot_count.set(c.geometry.slot_count);
            e.slot_size.set(c.geometry.slot_size);
            e.section_align.set(c.geometry.section_align);
            e.max_message.set(c.max_message);
            e.offset.set(offset as u64);
            e.size.set(size as u64);
            let [w0, w1] = c.message_type.to_wire();
            e.message_type[0].set(w0);
            e.message_type[1].set(w1);
            region.copy_in(t.channels + i * size_of::<ChannelEntry>(), e.as_bytes())?;
            match c.kind {
                ChannelKind::Spsc => {
                    RingLayout::create(region, offset, c.geometry).map_err(BuildError::Ring)?;
                }
                ChannelKind::Mpsc | ChannelKind::Pool => region.zero(offset, size)?,
            }
            at = offset + size;
        }
        for (i, g) in self.grants.iter().enumerate() {
            let (node, channel) = self.resolve(i, g)?;
            let mut e = GrantEntry::new_zeroed();
            e.node.set(node as u32);
            e.channel.set(channel as u32);
            e.end.set(g.end.to_wire());
            e.rights.set(g.rights.bits());
            region.copy_in(t.grants + i * size_of::<GrantEntry>(), e.as_bytes())?;
        }
        let mut h = ManifestHeader::new_zeroed();
        h.node_count.set(self.nodes.len() as u32);
        h.channel_count.set(self.channels.len() as u32);
        h.grant_count.set(self.grants.len() as u32);
        h.ends_per_node.set(plan.ends_per_node);
        h.section_align.set(self.section_align as u32);
        h.nodes_offset.set(t.nodes as u64);
        h.channels_offset.set(t.channels as u64);
        h.grants_offset.set(t.grants as u64);
        h.sections_offset.set(t.sections as u64);
        h.section_size.set(t.section_size as u64);
        h.data_offset.set(t.data as u64);
        h.checksum.set(checksum(region, t.nodes..t.end)?);
        // A node that sees the magic (Acquire in `Manifest::open`) sees the tables,
        // the zeroed sections and the rings.
        crate::descriptor::publish(region, MANIFEST_OFFSET, MANIFEST_MAGIC, &h)?;
        Manifest::open(region).map_err(BuildError::SelfCheck)
    }

    /// Checks every spec and computes the layout, writing nothing.
    fn place(&self) -> Result<Placement, BuildError> {
        let too_many = |what, count: usize, max: u32| {
            if count > max as usize {
                Err(BuildError::TooMany { what, count, max })
            } else {
                Ok(())
            }
        };
        too_many("nodes", self.nodes.len(), MAX_NODES)?;
        too_many("channels", self.channels.len(), MAX_CHANNELS)?;
        too_many("grants", self.grants.len(), MAX_GRANTS)?;
        for i in 0..self.nodes.len() {
            self.node_name(i)?;
            if self.nodes[..i].iter().any(|n| n.id == self.nodes[i].id) {
                return Err(BuildError::Duplicate {
                    what: "node id",
                    index: i,
                });
            }
        }
        for i in 0..self.channels.len() {
            let name = self.channel_name(i)?;
            if self.channels[..i].iter().any(|c| c.name == name.as_str()) {
                return Err(BuildError::Duplicate {
                    what: "channel name",
                    index: i,
                });
            }
        }
        let mut ends_per_node = 0u32;
        for n in self.nodes {
            let held = self.grants.iter().filter(|g| g.node == n.id).count();
            too_many("ends held by one node", held, MAX_ENDS_PER_NODE)?;
            ends_per_node = ends_per_node.max(held as u32);
        }
        for (i, g) in self.grants.iter().enumerate() {
            let (_, channel) = self.resolve(i, g)?;
            let wrong_way = match g.end {
                End::Consumer => g.rights.contains(Rights::SEND),
                End::Producer => g.rights.contains(Rights::RECEIVE),
            };
            let same_end = self.grants[..i]
                .iter()
                .filter(|o| o.channel == g.channel && o.end == g.end);
            if self.grants[..i]
                .iter()
                .any(|o| o.channel == g.channel && o.end == g.end && o.node == g.node)
            {
                return Err(BuildError::Duplicate {
                    what: "grant",
                    index: i,
                });
            }
            let allowed = match g.end {
                End::Producer => self.channels[channel].max_producers as usize,
                End::Consumer => 1,
            };
            if g.rights.bits() == 0 || wrong_way || same_end.count() >= allowed {
                return Err(BuildError::BadGrant { grant: i });
            }
        }
        let align = self.section_align;
        let tables = u32::try_from(align)
            .ok()
            .and_then(|a| {
                Tables::new(
                    self.nodes.len() as u32,
                    self.channels.len() as u32,
                    self.grants.len() as u32,
                    ends_per_node,
                    a,
                )
            })
            .ok_or(BuildError::BadAlignment(align))?;
        let mut end = tables.data;
        for i in 0..self.channels.len() {
            let (offset, size) = self.channel_place(i, end)?;
            end = offset + size;
        }
        Ok(Placement {
            tables,
            ends_per_node,
            end: end
                .checked_next_multiple_of(align)
                .ok_or(BuildError::RegionTooSmall {
                    needed: usize::MAX,
                    have: 0,
                })?,
        })
    }

    /// Offset and size of channel `i` when placed at or after `at`.
    fn channel_place(&self, i: usize, at: usize) -> Result<(usize, usize), BuildError> {
        let c = &self.channels[i];
        let bad = |field| BuildError::BadChannel { channel: i, field };
        let size = match c.kind {
            ChannelKind::Spsc => {
                if c.max_producers != 1 {
                    return Err(bad("max_producers"));
                }
                c.geometry
                    .ring_size()
                    .map_err(|error| BuildError::Geometry { channel: i, error })?
            }
            ChannelKind::Mpsc | ChannelKind::Pool => {
                let a = c.geometry.section_align;
                if !a.is_power_of_two() || !(128..=2 << 20).contains(&a) {
                    return Err(BuildError::Geometry {
                        channel: i,
                        error: GeometryError::SectionAlign(a),
                    });
                }
                if c.geometry.slot_count == 0 || c.geometry.slot_size == 0 {
                    return Err(bad("geometry"));
                }
                if c.max_producers == 0 || c.max_producers > MAX_PRODUCERS {
                    return Err(bad("max_producers"));
                }
                if c.size == 0 || !c.size.is_multiple_of(8) {
                    return Err(bad("size"));
                }
                c.size
            }
        };
        if c.max_message == 0 || c.max_message > c.geometry.slot_size {
            return Err(bad("max_message"));
        }
        let t = c.message_type;
        if !t.align.is_power_of_two() || t.size > c.max_message {
            return Err(bad("message_type"));
        }
        let align = self.section_align.max(c.geometry.section_align as usize);
        let too_big = BuildError::RegionTooSmall {
            needed: usize::MAX,
            have: 0,
        };
        let offset = at.checked_next_multiple_of(align).ok_or(too_big)?;
        offset.checked_add(size).ok_or(too_big)?;
        Ok((offset, size))
    }

    fn node_name(&self, i: usize) -> Result<Name, BuildError> {
        Name::new(self.nodes[i].name).map_err(|error| BuildError::BadName {
            what: "node",
            index: i,
            error,
        })
    }

    fn channel_name(&self, i: usize) -> Result<Name, BuildError> {
        Name::new(self.channels[i].name).map_err(|error| BuildError::BadName {
            what: "channel",
            index: i,
            error,
        })
    }

    /// Node and channel indices of grant `i`.
    fn resolve(&self, i: usize, g: &GrantSpec<'_>) -> Result<(usize, usize), BuildError> {
        let node =
            self.nodes
                .iter()
                .position(|n| n.id == g.node)
                .ok_or(BuildError::UnknownNode {
                    grant: i,
                    id: g.node,
                })?;
        let channel = self
            .channels
            .iter()
            .position(|c| c.name == g.channel)
            .ok_or(BuildError::UnknownChannel { grant: i })?;
        Ok((node, channel))
    }
}

//! The mkipc region manifest kernel0 writes once, before any secondary
//! starts: the nodes (kernel0 and each secondary), their channels (per node
//! a request ring, a response ring and a bulk pool; one MPSC fan-in channel
//! with a lane per node) and who may use which end. Node sections and
//! channel sections are page-aligned, so each secondary's page tables map
//! its own section writable and kernel0's read-only.
//!
//! The builder places every channel; kernel0 and the secondaries take
//! offsets and shapes from the manifest, looking channels up by the names
//! in `bootparse::layout::names`.

use crate::error::Error;
use bootparse::layout::{self, names};
use mkipc::manifest::{
    ChannelKind, ChannelSpec, End, GrantSpec, Manifest, ManifestBuilder, NodeSpec, Rights,
};
use mkipc::spsc::Geometry;
use mkipc::{MessageType, Region};
use platform::channels::{
    fanin_geometry, pool_geometry, request_type, response_type, ring_geometry,
};

/// Most channels: three per secondary and the fan-in channel.
const MAX_CHANNELS: usize = 3 * (layout::MAX_NODES - 1) + 1;
/// Most grants: seven per secondary and kernel0's fan-in consumer end.
const MAX_GRANTS: usize = 7 * (layout::MAX_NODES - 1) + 1;

/// What the manifest holds, for the console and the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// Nodes listed.
    pub nodes: u32,
    /// SPSC channels (connected through the core handshake).
    pub spsc: u32,
    /// Pool channels.
    pub pools: u32,
    /// MPSC channels.
    pub mpsc: u32,
    /// Grants.
    pub grants: u32,
    /// Bytes of each node section.
    pub section_size: usize,
    /// Bytes of region the layout uses.
    pub used: usize,
}

/// Writes the region header and the manifest for kernel0 and secondaries
/// `1..=secondaries` into `region` (generation 1), then opens it as a
/// secondary would.
pub fn write(region: &Region, secondaries: u32) -> Result<(Manifest, Shape), Error> {
    let count = secondaries as usize;
    if count == 0 || count >= layout::MAX_NODES {
        return Err(Error::Layout("secondary count outside 1..MAX_NODES"));
    }
    let pool_size = pool_geometry()
        .pool_size()
        .map_err(|_| Error::Layout("bulk pool geometry"))?;
    let fanin_size = fanin_geometry()
        .channel_size()
        .map_err(|_| Error::Layout("fan-in geometry"))?;
    let ring = ring_geometry();
    let spsc = |name, ty| ChannelSpec::spsc(name, ring).carrying(ty);
    let storage = |name, kind, slots, slot_size, producers, size| ChannelSpec {
        name,
        kind,
        geometry: Geometry::new(slots, slot_size),
        max_producers: producers,
        max_message: slot_size,
        message_type: MessageType::bytes(slot_size),
        size,
    };
    let grant = |node, channel, end, rights| GrantSpec {
        node,
        channel,
        end,
        rights,
    };
    let mut nodes = [NodeSpec { id: 0, name: "" }; layout::MAX_NODES];
    let mut channels = [spsc("", request_type()); MAX_CHANNELS];
    let mut grants = [grant(0, "", End::Consumer, Rights::RECEIVE); MAX_GRANTS];
    let (mut c, mut g) = (0, 0);
    for (id, n) in nodes.iter_mut().enumerate().take(count + 1) {
        *n = NodeSpec {
            id: id as u32,
            name: names::NODES[id],
        };
    }
    let recv_admin = Rights::RECEIVE | Rights::ADMIN;
    for id in 1..=secondaries {
        let (req, resp, pool) = names::channels(id).ok_or(Error::Layout("node id"))?;
        channels[c] = spsc(req, request_type());
        channels[c + 1] = spsc(resp, response_type());
        channels[c + 2] = storage(
            pool,
            ChannelKind::Pool,
            layout::POOL_BUFFERS,
            layout::POOL_BUFFER_SIZE,
            1,
            pool_size,
        );
        c += 3;
        for gs in [
            grant(0, req, End::Producer, Rights::SEND),
            grant(id, req, End::Consumer, Rights::RECEIVE),
            grant(id, resp, End::Producer, Rights::SEND),
            grant(0, resp, End::Consumer, recv_admin),
            grant(id, pool, End::Producer, Rights::SEND | Rights::LOAN),
            grant(0, pool, End::Consumer, recv_admin),
        ] {
            grants[g] = gs;
            g += 1;
        }
    }
    channels[c] = storage(
        names::FANIN,
        ChannelKind::Mpsc,
        layout::FANIN_SLOTS,
        layout::FANIN_SLOT_SIZE,
        secondaries,
        fanin_size,
    );
    c += 1;
    grants[g] = grant(0, names::FANIN, End::Consumer, recv_admin);
    g += 1;
    // Producer grants in node order: lane n-1 is node n's
    // (`platform::channels::fanin_lane`).
    for id in 1..=secondaries {
        grants[g] = grant(id, names::FANIN, End::Producer, Rights::SEND);
        g += 1;
    }
    let builder = ManifestBuilder::new(&nodes[..=count], &channels[..c], &grants[..g]);
    let used = builder.required_size().map_err(Error::Manifest)?;
    let manifest = builder.write(region, 1).map_err(Error::Manifest)?;
    let shape = Shape {
        nodes: manifest.node_count(),
        spsc: 2 * secondaries,
        pools: secondaries,
        mpsc: 1,
        grants: manifest.grant_count(),
        section_size: manifest.section_size(),
        used,
    };
    Ok((manifest, shape))
}

//! What kernel0 and the secondaries agree on about the channels of the
//! mkipc region: their message types and shapes (kernel0 writes them into
//! the manifest; the secondaries check the manifest against them through
//! the core handshake), the rule that gives a node its fan-in lane, and
//! how a sleeper on a handshake-connected ring checks for a message.

use bootparse::layout;
use bootparse::wire::{Request, Response};
use mkipc::MessageType;
use mkipc::manifest::{End, Manifest, ManifestError};
use mkipc::mpsc;
use mkipc::pool::PoolGeometry;
use mkipc::spsc::{ConsumeError, Consumer, Geometry};

/// The message type of the request rings.
pub fn request_type() -> MessageType {
    MessageType::of::<Request>()
}

/// The message type of the response rings.
pub fn response_type() -> MessageType {
    MessageType::of::<Response>()
}

/// The geometry of every request and response ring.
pub const fn ring_geometry() -> Geometry {
    Geometry::new(layout::RING_SLOTS, layout::RING_SLOT_SIZE)
}

/// The geometry of every bulk pool.
pub const fn pool_geometry() -> PoolGeometry {
    PoolGeometry::new(layout::POOL_BUFFERS, layout::POOL_BUFFER_SIZE)
}

/// The geometry of the fan-in channel (one lane per possible secondary).
pub const fn fanin_geometry() -> mpsc::Geometry {
    mpsc::Geometry::new(
        (layout::MAX_NODES - 1) as u32,
        layout::FANIN_SLOTS,
        layout::FANIN_SLOT_SIZE,
    )
}

/// The lane of MPSC channel `channel` (manifest index) that node `id` may
/// produce into: the position of its producer grant among the channel's
/// producer grants. `None` when the node holds no producer grant.
pub fn fanin_lane(
    manifest: &Manifest,
    channel: u32,
    id: u32,
) -> Result<Option<usize>, ManifestError> {
    let node = manifest.find_node(id)?;
    let mut lane = 0;
    for i in 0..manifest.grant_count() {
        let g = manifest.grant(i)?;
        if g.channel != channel || g.end != End::Producer {
            continue;
        }
        if g.node == node.index {
            return Ok(Some(lane));
        }
        lane += 1;
    }
    Ok(None)
}

/// "Is there a message" for a sleeper on a ring end the handshake
/// connects: the next slot is published (`false` while the handshake has
/// not given this side a consumer yet).
pub fn has_message(rx: Option<&mut Consumer>) -> Result<bool, ConsumeError> {
    match rx.map(|rx| rx.peek(1).map(|_| ())) {
        Some(Ok(())) => Ok(true),
        None | Some(Err(ConsumeError::Empty)) => Ok(false),
        Some(Err(e)) => Err(e),
    }
}

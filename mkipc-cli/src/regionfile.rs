//! Opening a region file: size checks, the manifest, and each end's mapping with
//! its peer's sections read-only.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use mkipc::Region;
use mkipc::header::HeaderError;
use mkipc::layout::RegionHeader;
use mkipc::manifest::{ChannelInfo, ChannelKind, Manifest, ManifestError, NodeInfo};
use mkipc::spsc::RingLayout;
use mkipc_sys::linux::map_file_protected;

use crate::failure::{CliResult, Failure};

/// Page size the CLI lays regions out with (and protects sections at).
pub const PAGE: usize = 4096;

/// Longest channel name: node names add a 3-byte suffix and must fit 32 bytes.
pub const MAX_CHANNEL_NAME: usize = 29;

/// Name of the node that sends on `channel`.
pub fn producer_node(channel: &str) -> String {
    format!("{channel}.tx")
}

/// Name of the node that receives on `channel`.
pub fn consumer_node(channel: &str) -> String {
    format!("{channel}.rx")
}

/// The liveness lock file of node `node` of the region at `region`: the live
/// process holds an exclusive lock on it (the kernel drops it when the process
/// dies), which is how a peer fences a dead process before reclaiming its end.
pub fn lock_path(region: &Path, node: &str) -> PathBuf {
    let mut p = region.as_os_str().to_owned();
    p.push(format!(".{node}.lock"));
    PathBuf::from(p)
}

/// Which end of a channel a process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `mkipc send`.
    Sender,
    /// `mkipc recv`.
    Receiver,
}

/// Opens `path` read-write and returns the file and its length, refusing files
/// that cannot hold a region header.
fn open_file(path: &Path) -> CliResult<(File, usize)> {
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Failure::usage(format!(
                "{}: no such region file; create it with `mkipc create {}`",
                path.display(),
                path.display()
            )),
            _ => Failure::other(format!("cannot open {}: {e}", path.display())),
        })?;
    let len = file
        .metadata()
        .map_err(|e| Failure::other(format!("cannot stat {}: {e}", path.display())))?
        .len();
    let len = usize::try_from(len)
        .map_err(|_| Failure::corrupt(format!("{}: impossibly large file", path.display())))?;
    if len < size_of::<RegionHeader>() {
        return Err(Failure::corrupt(format!(
            "{}: only {len} bytes, too short for an mkipc region (truncated or not a region); \
             recreate it with `mkipc create`",
            path.display()
        )));
    }
    Ok((file, len))
}

/// Maps the whole file with every complete page read-only: for looking only.
pub fn map_read_only(path: &Path) -> CliResult<(File, Region)> {
    let (file, len) = open_file(path)?;
    let pages = 0..len / PAGE * PAGE;
    let whole = std::slice::from_ref(&pages);
    let region = map_file_protected(&file, len, whole)
        .map_err(|e| Failure::other(format!("cannot map {}: {e}", path.display())))?;
    Ok((file, region))
}

/// Opens and validates the manifest of `region` (the file at `path`).
pub fn open_manifest(path: &Path, region: &Region) -> CliResult<Manifest> {
    Manifest::open(region).map_err(|e| manifest_failure(path, e))
}

/// The failure for a manifest that does not open.
pub fn manifest_failure(path: &Path, e: ManifestError) -> Failure {
    let p = path.display();
    match e {
        ManifestError::Header(HeaderError::BadMagic { .. }) => Failure::corrupt(format!(
            "{p}: not an mkipc region ({e}); recreate it with `mkipc create`"
        )),
        ManifestError::Header(
            HeaderError::VersionMismatch { .. } | HeaderError::LayoutMismatch { .. },
        ) => Failure::corrupt(format!(
            "{p}: written by an incompatible mkipc build ({e}); use the same build on both \
             sides or recreate the region"
        )),
        ManifestError::NoSuchChannel | ManifestError::NoSuchNode { .. } => {
            Failure::usage(format!("{p}: {e}"))
        }
        _ => Failure::corrupt(format!(
            "{p}: the region header or manifest is corrupt: {e}; recreate it with `mkipc create` \
             (`mkipc inspect` shows what is left)"
        )),
    }
}

/// Names of every channel in `manifest`, for error messages.
pub fn channel_names(manifest: &Manifest) -> String {
    let names: Vec<String> = (0..manifest.channel_count())
        .filter_map(|i| manifest.channel(i).ok())
        .map(|c| c.name.as_str().to_string())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// One end of one channel, mapped for its role.
#[derive(Debug)]
pub struct EndMapping {
    /// The region file (kept open for the mapping's life).
    pub file: File,
    /// The mapping, the peer's sections read-only where they are page-aligned.
    pub region: Region,
    /// The manifest, opened on this mapping.
    pub manifest: Manifest,
    /// The channel.
    pub channel: ChannelInfo,
    /// The ring's layout, read once.
    pub ring: RingLayout,
    /// This end's node.
    pub own: NodeInfo,
    /// The peer's node.
    pub peer: NodeInfo,
    /// The ranges mapped read-only (empty when the layout cannot be protected).
    pub read_only: Vec<Range<usize>>,
}

/// Opens channel `name` of the region at `path` for `role`: validates the
/// manifest, finds the channel and both nodes, and maps the region again with
/// everything this end must not write read-only: header and manifest, the
/// ring's descriptor, the peer's ring section and the peer node's section.
pub fn open_end(path: &Path, name: &str, role: Role) -> CliResult<EndMapping> {
    let (file, first) = map_read_only(path)?;
    let manifest = open_manifest(path, &first)?;
    let plan = locate(path, &manifest, name, role)?;
    let ranges = protected_ranges(&manifest, &plan, role).map_err(|e| manifest_failure(path, e))?;
    let aligned = ranges
        .iter()
        .all(|r| r.start % PAGE == 0 && r.end % PAGE == 0);
    let ranges = if aligned { ranges } else { Vec::new() };
    drop(manifest);
    drop(first);
    let region = map_file_protected(&file, plan.region_len, &ranges)
        .map_err(|e| Failure::other(format!("cannot map {}: {e}", path.display())))?;
    let manifest = open_manifest(path, &region)?;
    let again = locate(path, &manifest, name, role)?;
    if again.channel.offset != plan.channel.offset || again.own.section != plan.own.section {
        return Err(Failure::corrupt(format!(
            "{}: the manifest changed while it was being opened; someone is rewriting the \
             region (run `mkipc create` only while no process uses it)",
            path.display()
        )));
    }
    Ok(EndMapping {
        file,
        region,
        manifest,
        channel: again.channel,
        ring: again.ring,
        own: again.own,
        peer: again.peer,
        read_only: ranges,
    })
}

/// What an end needs from the manifest.
struct Plan {
    region_len: usize,
    channel: ChannelInfo,
    ring: RingLayout,
    own: NodeInfo,
    peer: NodeInfo,
}

fn locate(path: &Path, manifest: &Manifest, name: &str, role: Role) -> CliResult<Plan> {
    let p = path.display();
    let channel = match manifest.find_channel(name) {
        Ok(c) => c,
        Err(ManifestError::NoSuchChannel) => {
            return Err(Failure::usage(format!(
                "{p} has no channel named {name:?} (channels: {}); pick one with --channel",
                channel_names(manifest)
            )));
        }
        Err(e) => return Err(manifest_failure(path, e)),
    };
    if channel.kind != ChannelKind::Spsc {
        return Err(Failure::usage(format!(
            "channel {name:?} is a {:?} channel; `mkipc send`/`recv` use SPSC channels only",
            channel.kind
        )));
    }
    let ring = RingLayout::read(manifest.region(), channel.offset).map_err(|e| {
        Failure::corrupt(format!(
            "{p}: the ring of channel {name:?} is corrupt: {e}; recreate the region"
        ))
    })?;
    let (own_name, peer_name) = match role {
        Role::Sender => (producer_node(name), consumer_node(name)),
        Role::Receiver => (consumer_node(name), producer_node(name)),
    };
    let node = |n: &str| -> CliResult<NodeInfo> {
        manifest
            .find_node_named(n)
            .map_err(|e| manifest_failure(path, e))?
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{p} lists no node {n:?}: the region was not made by `mkipc create`, which \
                     names the two ends of channel {name:?} {:?} and {:?}",
                    producer_node(name),
                    consumer_node(name)
                ))
            })
    };
    Ok(Plan {
        region_len: manifest.region().len(),
        channel,
        ring,
        own: node(&own_name)?,
        peer: node(&peer_name)?,
    })
}

/// The ranges `role` must not write.
fn protected_ranges(
    manifest: &Manifest,
    plan: &Plan,
    role: Role,
) -> Result<Vec<Range<usize>>, ManifestError> {
    let first_section = manifest.node(0)?.section;
    let peer_section = manifest.node_section(plan.peer.index)?;
    let ring = &plan.ring;
    let peer_ring = match role {
        Role::Sender => ring.consumer_section(),
        Role::Receiver => ring.producer_section(),
    };
    Ok(vec![
        0..first_section,
        peer_section,
        ring.offset()..ring.consumer_section().start,
        peer_ring,
    ])
}

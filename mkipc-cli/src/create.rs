//! `mkipc create`: lay out a region file with one SPSC channel per `--channel`.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use mkipc::manifest::{ChannelSpec, End, GrantSpec, ManifestBuilder, Name, NodeSpec, Rights};
use mkipc::spsc::{Geometry, MAX_SLOT_SIZE, MAX_SLOTS};
use mkipc_sys::linux::map_file;

use crate::failure::{CliResult, Failure};
use crate::regionfile::{MAX_CHANNEL_NAME, PAGE, consumer_node, producer_node};

/// What `mkipc create` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateArgs {
    /// Channel names (at least one).
    pub channels: Vec<String>,
    /// Slots per ring.
    pub slots: u32,
    /// Payload bytes per slot.
    pub slot_size: u32,
    /// Overwrite an existing file.
    pub force: bool,
}

/// Checks the geometry and names before anything is written.
pub fn check(args: &CreateArgs) -> CliResult<Geometry> {
    if args.slots == 0 || !args.slots.is_power_of_two() || args.slots > MAX_SLOTS {
        return Err(Failure::usage(format!(
            "--slots {}: the slot count must be a power of two from 1 to {MAX_SLOTS} \
             (for example 64 or 1024)",
            args.slots
        )));
    }
    if args.slot_size < 8 || !args.slot_size.is_multiple_of(8) || args.slot_size > MAX_SLOT_SIZE {
        return Err(Failure::usage(format!(
            "--slot-size {}: the slot size must be a multiple of 8 from 8 to {MAX_SLOT_SIZE} \
             bytes (for example 256)",
            args.slot_size
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for name in &args.channels {
        if name.len() > MAX_CHANNEL_NAME {
            return Err(Failure::usage(format!(
                "--channel {name:?}: at most {MAX_CHANNEL_NAME} bytes, please shorten it"
            )));
        }
        Name::new(name).map_err(|e| {
            Failure::usage(format!(
                "--channel {name:?}: {e}; use printable ASCII without spaces"
            ))
        })?;
        if !seen.insert(name.as_str()) {
            return Err(Failure::usage(format!(
                "--channel {name:?} is given twice; channel names must be unique"
            )));
        }
    }
    let geometry = Geometry::new(args.slots, args.slot_size);
    geometry.ring_size().map_err(|e| {
        Failure::usage(format!(
            "--slots {} --slot-size {}: {e}; choose a smaller ring",
            args.slots, args.slot_size
        ))
    })?;
    Ok(geometry)
}

/// Writes the region file at `path`; returns its size.
pub fn run(path: &Path, args: &CreateArgs, out: &mut impl Write) -> CliResult<usize> {
    let geometry = check(args)?;
    let node_names: Vec<(String, String)> = args
        .channels
        .iter()
        .map(|c| (producer_node(c), consumer_node(c)))
        .collect();
    let mut nodes = Vec::new();
    let mut channels = Vec::new();
    let mut grants = Vec::new();
    for (i, (name, (tx, rx))) in args.channels.iter().zip(&node_names).enumerate() {
        let id = 2 * i as u32;
        nodes.push(NodeSpec {
            id: id + 1,
            name: tx,
        });
        nodes.push(NodeSpec {
            id: id + 2,
            name: rx,
        });
        channels.push(ChannelSpec::spsc(name, geometry));
        grants.push(GrantSpec {
            node: id + 1,
            channel: name,
            end: End::Producer,
            rights: Rights::SEND,
        });
        grants.push(GrantSpec {
            node: id + 2,
            channel: name,
            end: End::Consumer,
            rights: Rights::RECEIVE | Rights::ADMIN,
        });
    }
    let builder = ManifestBuilder::new(&nodes, &channels, &grants);
    let size = builder
        .required_size()
        .map_err(|e| Failure::usage(format!("cannot lay out the region: {e}")))?
        .next_multiple_of(PAGE);
    if path.exists() && !args.force {
        return Err(Failure::usage(format!(
            "{} already exists; pass --force to overwrite it (only while no process uses it)",
            path.display()
        )));
    }
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Failure::other(format!("cannot create {}: {e}", path.display())))?;
    let region = map_file(&file, size)
        .map_err(|e| Failure::other(format!("cannot map {}: {e}", path.display())))?;
    builder
        .write(&region, 1)
        .map_err(|e| Failure::other(format!("cannot write the manifest: {e}")))?;
    let _ = writeln!(
        out,
        "created {} ({size} bytes): {} channel(s) of {} slots x {} bytes: {}",
        path.display(),
        args.channels.len(),
        args.slots,
        args.slot_size,
        args.channels.join(", ")
    );
    Ok(size)
}

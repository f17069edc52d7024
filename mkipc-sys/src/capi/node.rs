//! Nodes: this program as a node of the region's manifest (boot, heartbeat,
//! stop), the identity every connect by channel name goes through.
//!
//! A region laid out with a manifest (by `mkipc create`, or a Rust
//! `ManifestBuilder`) lists nodes, channels and grants. A C kernel or service
//! boots as one node (`mkipc_node_boot`: a new epoch, state `Alive`), connects the
//! channel ends granted to it (`mkipc_producer_connect`, `mkipc_consumer_connect`
//! in `ring.rs`), beats while it runs (`mkipc_node_beat`: peers declare a node dead
//! once its heartbeat stops changing for their timeout), and stops in order
//! (`mkipc_node_close`). The core's `LocalNode` does the writing; all of it lies
//! in the node's own section.

use core::ffi::{CStr, c_char};

use mkipc::lifecycle::LocalNode;
use mkipc::manifest::Manifest;

use super::handle::{self, NODE, fits};
use super::hooks::MkipcHooks;
use super::region::{MkipcRegion, region_ref};
use super::status::{Result, Status};
use super::{guard, put};

/// This program as a node of a region's manifest (opaque; zero-initialise
/// before booting).
#[repr(C)]
pub struct MkipcNode {
    opaque: [u64; 96],
}

/// What a node handle holds.
pub(crate) struct NodeHandle {
    pub(crate) manifest: Manifest,
    pub(crate) node: LocalNode,
    pub(crate) hooks: MkipcHooks,
    #[cfg(all(feature = "std", target_os = "linux"))]
    lock: Option<crate::linux::LivenessLock>,
}

const _: () = assert!(fits::<MkipcNode, NodeHandle>());

/// The open node in `node`, shared.
///
/// # Safety
///
/// `node` is null or points to a live `mkipc_node` not written concurrently.
pub(crate) unsafe fn node_ref<'a>(node: *const MkipcNode) -> Result<&'a NodeHandle> {
    // SAFETY: forwarded contract.
    unsafe { handle::get_ref::<MkipcNode, NodeHandle>(node, NODE) }
}

/// # Safety
///
/// `node` is null or points to `mkipc_node` storage no other thread uses.
unsafe fn node_mut<'a>(node: *mut MkipcNode) -> Result<&'a mut NodeHandle> {
    // SAFETY: forwarded contract.
    unsafe { handle::get(node, NODE) }
}

/// A C string argument as UTF-8 (`NULL` and non-UTF-8 refused).
///
/// # Safety
///
/// `s` is null or NUL-terminated.
pub(crate) unsafe fn c_str<'a>(s: *const c_char) -> Result<&'a str> {
    if s.is_null() {
        return Err(Status::Null);
    }
    // SAFETY: non-null and NUL-terminated by the contract.
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str().map_err(|_| Status::InvalidArgument)
}

fn boot(
    out: *mut MkipcNode,
    region: *const MkipcRegion,
    id: impl FnOnce(&Manifest) -> Result<u32>,
) -> Result<()> {
    if out.is_null() {
        return Err(Status::Null);
    }
    // SAFETY: `region` is null or a live region by the callers' contracts.
    let region = unsafe { region_ref(region)? };
    let manifest = Manifest::open(region)?;
    let id = id(&manifest)?;
    let node = LocalNode::boot(&manifest, id)?;
    let handle = NodeHandle {
        manifest,
        node,
        hooks: MkipcHooks::default(),
        #[cfg(all(feature = "std", target_os = "linux"))]
        lock: None,
    };
    // SAFETY: `out` is valid storage by the callers' contracts.
    unsafe { handle::open(out, NODE, handle) }
}

/// Opens the region's manifest (validating all of it) and boots the node named
/// `name` (`mkipc create` names the two ends of channel C `C.tx` and `C.rx`):
/// its epoch goes one above its previous incarnation's and its state to alive.
///
/// `MKIPC_STATUS_NO_SUCH_NODE` when the manifest lists no such node,
/// `MKIPC_STATUS_NOT_INITIALIZED` when the region has no manifest yet,
/// `MKIPC_STATUS_BAD_MANIFEST` when it fails validation. Beat the node
/// (`mkipc_node_beat`) more often than peers' dead-node timeout.
///
/// # Safety
///
/// `out` points to writable, zero-initialised (or closed) `mkipc_node` storage;
/// `region` is null or points to a live `mkipc_region`; `name` is null or
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_node_boot(
    out: *mut MkipcNode,
    region: *const MkipcRegion,
    name: *const c_char,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let name = unsafe { c_str(name)? };
        boot(out, region, |m| {
            let node = m.find_node_named(name)?;
            node.map(|n| n.id).ok_or(Status::NoSuchNode)
        })
    })
}

/// `mkipc_node_boot` for the node with id `id`.
///
/// # Safety
///
/// As for `mkipc_node_boot`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_node_boot_id(
    out: *mut MkipcNode,
    region: *const MkipcRegion,
    id: u32,
) -> i32 {
    guard(|| boot(out, region, |_| Ok(id)))
}

/// Beats the node's heartbeat once: peers (the `mkipc` tool's watchdog, a Rust
/// `Watchdog`) declare the node dead when it stops changing for their timeout
/// (the tool's default is 1 s; it beats every 20 ms).
///
/// # Safety
///
/// `node` is null or points to `mkipc_node` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_node_beat(node: *mut MkipcNode) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let n = unsafe { node_mut(node)? };
        Ok(n.node.beat()?)
    })
}

/// Stores the node's epoch (this incarnation's number, 1 on the first boot) in
/// `*out_epoch`.
///
/// # Safety
///
/// `node` is null or points to a live `mkipc_node`; `out_epoch` is null or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_node_epoch(node: *const MkipcNode, out_epoch: *mut u64) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let n = unsafe { node_ref(node)? };
        if out_epoch.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_epoch, n.node.epoch()) };
        Ok(())
    })
}

/// Installs the hooks used by the node's connect calls (the clock for their
/// timeouts, `relax` between polls) and copied into every endpoint connected
/// through it (copied; NULL removes them).
///
/// # Safety
///
/// `node` as for `mkipc_node_beat`; `hooks` is null or readable, and its
/// functions may be called with its `ctx` until the node and every endpoint
/// connected through it are closed or given other hooks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_node_set_hooks(
    node: *mut MkipcNode,
    hooks: *const MkipcHooks,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let n = unsafe { node_mut(node)? };
        // SAFETY: forwarded contract.
        n.hooks = unsafe { MkipcHooks::from_ptr(hooks) };
        Ok(())
    })
}

/// Takes an exclusive lock on the file `path` (created if missing) and holds it
/// until the node is closed or the process dies: a peer process checks the lock
/// before fencing this node as dead (the `mkipc` tool uses
/// `REGION.NODE.lock` next to the region file, e.g.
/// `/dev/shm/demo.main.tx.lock`). `MKIPC_STATUS_IO` (with `errno`) when another
/// live process holds it; `MKIPC_STATUS_UNSUPPORTED` without `std`.
///
/// # Safety
///
/// `node` as for `mkipc_node_beat`; `path` is null or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_node_hold_lock(node: *mut MkipcNode, path: *const c_char) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let n = unsafe { node_mut(node)? };
        // SAFETY: forwarded contract.
        let path = unsafe { c_str(path)? };
        hold_lock(n, path)
    })
}

#[cfg(all(feature = "std", target_os = "linux"))]
fn hold_lock(n: &mut NodeHandle, path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Status::InvalidArgument);
    }
    let lock = crate::linux::LivenessLock::hold(std::path::Path::new(path)).map_err(|e| {
        if let Some(code) = e.raw_os_error() {
            // SAFETY: `__errno_location` returns this thread's errno slot.
            unsafe { *libc::__errno_location() = code };
        }
        Status::Io
    })?;
    n.lock = Some(lock);
    Ok(())
}

#[cfg(not(all(feature = "std", target_os = "linux")))]
fn hold_lock(_n: &mut NodeHandle, _path: &str) -> Result<()> {
    Err(Status::Unsupported)
}

/// Declares the node stopped (an orderly exit: peers see `Stopped`, not a
/// death), releases its lock file and closes the handle. Endpoints connected
/// through it stay usable until closed.
///
/// # Safety
///
/// `node` is null or points to `mkipc_node` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_node_close(node: *mut MkipcNode) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let n: NodeHandle = unsafe { handle::take(node, NODE)? };
        // The rest of the handle (the lock file) goes after the stop is written.
        Ok(n.node.stop()?)
    })
}

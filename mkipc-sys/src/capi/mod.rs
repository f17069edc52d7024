//! The C ABI (feature `capi`): `extern "C"` functions over the core's rings,
//! byte channels and buffer pool, for kernels and services written in C.
//!
//! * [`status`]: the status codes every function returns (`MKIPC_STATUS_OK` is 0, every
//!   error is negative) and [`status::mkipc_status_str`].
//! * [`handle`]: caller-owned handle storage. Handles live in memory the caller
//!   provides (a kernel has no allocator), carry a kind magic, and are refused
//!   with a status when null, misaligned, not open, or of another kind.
//! * [`region`]: regions from a pointer and length (kernels), from a file under
//!   `/dev/shm` (userspace, feature `std`), the region header, layout sizes.
//! * [`node`]: this program as a node of the region's manifest: boot, heartbeat,
//!   lock file, stop.
//! * [`ring`]: SPSC producer and consumer (small messages, the fast path),
//!   attached by offset or connected by channel name through the manifest and
//!   the core handshake.
//! * [`channel`]: byte channels over the buffer pool: copy in/out, zero-copy
//!   loans on the sending side, held buffers on the receiving side.
//! * [`hooks`]: platform hooks as C function pointers (ring a doorbell, read a
//!   clock, relax between polls) and the timed calls that use them.
//!
//! Nothing unwinds across the boundary: the core returns error values for
//! everything a peer or a caller can do wrong; with `std`, every function body
//! also runs under `catch_unwind` and reports `MKIPC_STATUS_INTERNAL`. Without `std`
//! the `panic-handler` feature supplies the handler a bare-metal staticlib needs.
//!
//! `cbindgen` turns this module into `mkipc-sys/include/mkipc.h` (see
//! `mkipc-sys/cbindgen.toml`); `cargo xtask test` fails when that file is stale.

pub mod channel;
pub mod handle;
pub mod hooks;
pub mod node;
pub mod region;
pub mod ring;
pub mod status;

#[cfg(all(feature = "panic-handler", not(feature = "std"), target_os = "none"))]
pub mod panic;

pub use status::Status;

/// What a C kernel may install to hear about an mkipc panic (a bug): it gets a
/// fixed NUL-terminated message and should not return (it may log and halt).
#[cfg(all(feature = "panic-handler", not(feature = "std"), target_os = "none"))]
pub type MkipcPanicHook = unsafe extern "C" fn(message: *const core::ffi::c_char);

/// Installs the function called when mkipc panics (a bug in mkipc; no status
/// path can reach it). NULL removes it. Only in bare-metal builds with the
/// `panic-handler` feature.
#[cfg(all(feature = "panic-handler", not(feature = "std"), target_os = "none"))]
#[unsafe(no_mangle)]
pub extern "C" fn mkipc_set_panic_hook(
    hook: Option<unsafe extern "C" fn(message: *const core::ffi::c_char)>,
) {
    let raw = hook.map_or(core::ptr::null_mut(), |f| f as *mut ());
    // Release: pairs with the Acquire load in the panic handler, so a panicking CPU sees
    // the hook fully installed.
    panic::PANIC_HOOK.store(raw, core::sync::atomic::Ordering::Release);
}

/// Runs an ABI function body and returns its status code, turning a panic into
/// `MKIPC_STATUS_INTERNAL` where `std` can catch it. Without `std` nothing can
/// unwind: the bare-metal panic strategy is abort, through the platform's (or the
/// `panic-handler` feature's) panic handler.
pub(crate) fn guard(body: impl FnOnce() -> status::Result<()>) -> i32 {
    #[cfg(feature = "std")]
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or(Err(Status::Internal));
    #[cfg(not(feature = "std"))]
    let outcome = body();
    match outcome {
        Ok(()) => Status::Ok as i32,
        Err(status) => status as i32,
    }
}

/// Writes `value` through an optional out-pointer (null means "not wanted").
///
/// # Safety
///
/// `out` is null or valid for writing one `T`.
pub(crate) unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-null and valid for writes by the caller's contract;
        // `write` does not read or drop what was there.
        unsafe { out.write(value) };
    }
}

/// A caller's byte range as a slice; `len == 0` accepts a null pointer.
///
/// # Safety
///
/// `ptr` is null only when `len` is 0, else valid for reads of `len` bytes for `'a`,
/// not written during `'a`, and not inside a shared region.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> status::Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Status::Null);
    }
    if len > isize::MAX as usize {
        return Err(Status::InvalidArgument);
    }
    // SAFETY: non-null, `len` readable bytes by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// A caller's writable byte range as a slice; `len == 0` accepts a null pointer.
///
/// # Safety
///
/// `ptr` is null only when `len` is 0, else valid for writes of `len` bytes for
/// `'a`, not accessed otherwise during `'a`, and not inside a shared region.
pub(crate) unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize) -> status::Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Status::Null);
    }
    if len > isize::MAX as usize {
        return Err(Status::InvalidArgument);
    }
    // SAFETY: non-null, `len` writable bytes, exclusively ours by the contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

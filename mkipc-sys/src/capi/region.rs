//! Regions: shared memory from a pointer and length, or from a file.

use core::ffi::{c_char, c_void};

use mkipc::Region;
use mkipc::header::{read_header, write_header};

use super::handle::{self, REGION, fits};
use super::status::{Result, Status};
use super::{guard, put};

/// Size of the region header at offset 0; the first ring or channel goes at the
/// next section boundary (`MKIPC_SECTION_ALIGN`).
pub const MKIPC_HEADER_SIZE: usize = 128;
/// Default section alignment of rings and channels: their offsets must be
/// multiples of it (of `MKIPC_COMPACT_ALIGN` with `MKIPC_LAYOUT_COMPACT`).
pub const MKIPC_SECTION_ALIGN: usize = 4096;
/// Section alignment with `MKIPC_LAYOUT_COMPACT`.
pub const MKIPC_COMPACT_ALIGN: usize = 128;
/// Flag for `mkipc_region_open_file`: create the file if it is missing and grow
/// it to `len` bytes.
pub const MKIPC_OPEN_CREATE: u32 = 1;

const _: () = assert!(mkipc::layout::CACHE_LINE == MKIPC_COMPACT_ALIGN);
const _: () = assert!(mkipc::layout::PAGE == MKIPC_SECTION_ALIGN);
const _: () = assert!(size_of::<mkipc::layout::RegionHeader>() == MKIPC_HEADER_SIZE);

/// A shared-memory region (opaque; zero-initialise before opening).
#[repr(C)]
pub struct MkipcRegion {
    opaque: [u64; 8],
}

const _: () = assert!(fits::<MkipcRegion, Region>());

/// The open region in `region`.
///
/// # Safety
///
/// `region` is null or points to a live `mkipc_region` not closed concurrently.
pub(crate) unsafe fn region_ref<'a>(region: *const MkipcRegion) -> Result<&'a Region> {
    // SAFETY: forwarded contract; shared use only.
    unsafe { handle::get_ref::<MkipcRegion, Region>(region, REGION) }
}

/// Opens a region over memory the caller provides (a kernel's shared window).
///
/// `base` must be 8-byte aligned and `len` a non-zero multiple of 8, else
/// `MKIPC_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `out` points to writable, zero-initialised (or closed) `mkipc_region` storage.
/// `base .. base + len` stays mapped, readable and writable until this region and
/// every ring or channel endpoint attached through it are closed, and nothing in
/// this program accesses it except through mkipc (peers in other kernels or
/// processes access it with whole, aligned 8-byte loads and stores, as mkipc does).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_region_from_memory(
    out: *mut MkipcRegion,
    base: *mut c_void,
    len: usize,
) -> i32 {
    guard(|| {
        if base.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: the caller's contract is `Region::from_raw_parts`'s.
        let region = unsafe { Region::from_raw_parts(base.cast(), len)? };
        // SAFETY: `out` is null or valid storage by the contract.
        unsafe { handle::open(out, REGION, region) }
    })
}

/// Opens a region backed by a shared file mapping, typically under `/dev/shm`
/// (userspace; needs a build with `std`, else `MKIPC_STATUS_UNSUPPORTED`).
///
/// With `MKIPC_OPEN_CREATE` in `flags` the file is created when missing and grown
/// to `len` bytes (`len` must then be non-zero). Without it the file must exist;
/// `len` 0 maps the whole file, and a `len` longer than the file is
/// `MKIPC_STATUS_DOES_NOT_FIT`. On `MKIPC_STATUS_IO`, `errno` holds the OS error.
/// The mapping lives until the region and every endpoint attached through it are
/// closed. The region is not formatted: the owner calls `mkipc_region_format`.
///
/// # Safety
///
/// `out` points to writable, zero-initialised (or closed) `mkipc_region` storage;
/// `path` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_region_open_file(
    out: *mut MkipcRegion,
    path: *const c_char,
    len: usize,
    flags: u32,
) -> i32 {
    guard(|| {
        if out.is_null() || path.is_null() {
            return Err(Status::Null);
        }
        if flags & !MKIPC_OPEN_CREATE != 0 {
            return Err(Status::InvalidArgument);
        }
        // SAFETY: non-null and NUL-terminated by the contract.
        let path = unsafe { core::ffi::CStr::from_ptr(path) };
        let region = open_file(path, len, flags & MKIPC_OPEN_CREATE != 0)?;
        // SAFETY: `out` is valid storage by the contract.
        unsafe { handle::open(out, REGION, region) }
    })
}

#[cfg(all(feature = "std", target_os = "linux"))]
fn open_file(path: &core::ffi::CStr, len: usize, create: bool) -> Result<Region> {
    use std::os::unix::ffi::OsStrExt;

    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
    if path.as_os_str().is_empty() || (create && len == 0) {
        return Err(Status::InvalidArgument);
    }
    let io = |e: std::io::Error| {
        if let Some(code) = e.raw_os_error() {
            // SAFETY: `__errno_location` returns this thread's errno slot.
            unsafe { *libc::__errno_location() = code };
        }
        Status::Io
    };
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let len = match (create, len) {
        (false, 0) => usize::try_from(size).map_err(|_| Status::DoesNotFit)?,
        (false, n) if n as u64 > size => return Err(Status::DoesNotFit),
        (_, n) => n,
    };
    if len == 0 || !len.is_multiple_of(mkipc::WORD) {
        return Err(Status::InvalidArgument);
    }
    crate::linux::map_file(&file, len).map_err(io)
}

#[cfg(not(all(feature = "std", target_os = "linux")))]
fn open_file(_path: &core::ffi::CStr, _len: usize, _create: bool) -> Result<Region> {
    Err(Status::Unsupported)
}

/// Closes a region handle. Endpoints attached through it stay usable (they hold
/// their own reference; a file mapping is unmapped when the last one closes).
///
/// # Safety
///
/// `region` is null or points to `mkipc_region` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_region_close(region: *mut MkipcRegion) -> i32 {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::close::<MkipcRegion, Region>(region, REGION) })
}

/// Stores the region's length in bytes in `*out_len`.
///
/// # Safety
///
/// `region` is null or points to a live `mkipc_region`; `out_len` is null or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_region_len(region: *const MkipcRegion, out_len: *mut usize) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        if out_len.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_len, region.len()) };
        Ok(())
    })
}

/// Writes a fresh region header (done once by the region's owner, before it
/// creates rings and channels) carrying `generation`.
///
/// # Safety
///
/// `region` is null or points to a live `mkipc_region`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_region_format(region: *const MkipcRegion, generation: u64) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        write_header(region, generation)?;
        Ok(())
    })
}

/// Reads and validates the region header (magic, ABI version, layout hash, size)
/// and stores its generation in `*out_generation` (may be NULL).
///
/// `MKIPC_STATUS_NOT_INITIALIZED` means the owner has not formatted it yet.
///
/// # Safety
///
/// `region` is null or points to a live `mkipc_region`; `out_generation` is null
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_region_check(
    region: *const MkipcRegion,
    out_generation: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        let header = read_header(region)?;
        // SAFETY: null or writable by the contract.
        unsafe { put(out_generation, header.generation.get()) };
        Ok(())
    })
}

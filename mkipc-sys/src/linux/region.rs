//! Regions backed by a shared file mapping (a file under /dev/shm, a memfd, ...).

use std::fs::File;
use std::io;
use std::sync::Arc;

use memmap2::MmapOptions;
use mkipc::Region;

/// Maps `len` bytes of `file` shared and wraps them as a [`Region`].
///
/// The file is grown to `len` bytes when shorter. Every process that maps the same
/// file sees the same memory.
pub fn map_file(file: &File, len: usize) -> io::Result<Region> {
    let current = file.metadata()?.len();
    if current < len as u64 {
        file.set_len(len as u64)?;
    }
    map_range(file, 0, len, &[])
}

/// Maps the first `len` bytes of `file` shared, with each range of `read_only`
/// mapped read-only (`PROT_READ`), and wraps the mapping as a [`Region`].
///
/// This is how one side maps its peer's sections: the peer's words stay readable,
/// and a stray write into them faults in the writer instead of corrupting the peer.
/// Ranges must be page-aligned (start and end) and inside `len`. The file is not
/// grown: a file shorter than `len` is refused, because touching a mapped page past
/// the end of a file raises `SIGBUS`.
pub fn map_file_protected(
    file: &File,
    len: usize,
    read_only: &[core::ops::Range<usize>],
) -> io::Result<Region> {
    let current = file.metadata()?.len();
    if current < len as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the file has {current} bytes, fewer than the {len} to map"),
        ));
    }
    // SAFETY: `sysconf` reads a constant.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    for r in read_only {
        if r.start > r.end || r.end > len || r.start % page != 0 || r.end % page != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot protect bytes {:#x}..{:#x}: not page-aligned ({page} bytes) \
                     or outside the {len}-byte mapping",
                    r.start, r.end
                ),
            ));
        }
    }
    map_range(file, 0, len, read_only)
}

/// Maps `len` bytes of `file` from `offset`, shared, with each range of
/// `read_only` (page-aligned, inside `len`, checked by the caller) made
/// `PROT_READ`, and wraps the mapping as a [`Region`] that keeps it alive.
pub(crate) fn map_range(
    file: &File,
    offset: u64,
    len: usize,
    read_only: &[core::ops::Range<usize>],
) -> io::Result<Region> {
    let map = MmapOptions::new().offset(offset).len(len).map_raw(file)?;
    let ptr = map.as_mut_ptr();
    for r in read_only.iter().filter(|r| !r.is_empty()) {
        // SAFETY: the caller checked that the range is page-aligned and inside the
        // live mapping `map`; mprotect changes only its permissions. Nothing holds
        // a reference into it, and mkipc writes only words of its own sections,
        // which the caller leaves writable.
        let rc = unsafe {
            libc::mprotect(
                ptr.add(r.start).cast::<libc::c_void>(),
                r.end - r.start,
                libc::PROT_READ,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let owner: Arc<dyn Send + Sync> = Arc::new(map);
    // SAFETY: the mapping stays alive as long as `owner`, which every clone of the
    // region keeps; it is `len` bytes long and shared; mkipc accesses it only with
    // whole-word atomics, and peers follow the same wire format. Loads from the
    // read-only ranges are allowed; the caller writes only the writable ones. Where
    // the file can shrink under us (an unsealed file), callers document the risk.
    unsafe { Region::from_raw_parts_owned(ptr, len, owner) }
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkipc::spsc::{self, Geometry};

    #[test]
    fn two_mappings_of_one_file_share_a_ring() {
        let path = std::env::temp_dir().join(format!("mkipc-map-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let g = Geometry::new(8, 56);
        let a = map_file(&file, g.ring_size().unwrap()).unwrap();
        let b = map_file(&file, g.ring_size().unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (mut tx, _) = spsc::channel(&a, 0, g).unwrap();
        let mut rx = spsc::Consumer::attach(b, 0).unwrap();
        tx.push(b"across mappings").unwrap();
        let mut buf = [0u8; 56];
        let n = rx.pop(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"across mappings");
    }
}

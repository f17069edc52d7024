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
    let map = MmapOptions::new().len(len).map_raw(file)?;
    let ptr = map.as_mut_ptr();
    let owner: Arc<dyn Send + Sync> = Arc::new(map);
    // SAFETY: the mapping stays alive as long as `owner`, which every clone of the
    // region keeps; it is `len` bytes long, shared and read-write; mkipc accesses it
    // only with whole-word atomics, and peers follow the same wire format.
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

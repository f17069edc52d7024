//! Pure boot-time parsers, free of hardware access and of `unsafe`.
//!
//! Everything here reads firmware tables, boot images and parameter blocks
//! through byte slices or the [`PhysMem`] trait, so it compiles on the host
//! and is unit-tested there with malformed inputs. Every malformed input is
//! an error value: no parser panics or indexes out of bounds.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod acpi;
pub mod bootparams;
pub mod bundle;
mod bytes;
pub mod cmdline;
pub mod elf;
pub mod layout;
pub mod pvh;
pub mod wire;

/// A physical memory reader. The kernel implements it over its identity
/// mapping; tests implement it over a byte array.
pub trait PhysMem {
    /// Copies `buf.len()` bytes starting at physical address `paddr`.
    /// Fails if any byte of the range is not readable.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MemError>;
}

/// A physical range that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemError {
    /// First address of the refused range.
    pub paddr: u64,
    /// Length of the refused range.
    pub len: u64,
}

/// A [`PhysMem`] over one byte slice placed at a physical base address.
#[derive(Debug, Clone, Copy)]
pub struct SliceMem<'a> {
    /// Physical address of `bytes[0]`.
    pub base: u64,
    /// The memory contents.
    pub bytes: &'a [u8],
}

impl PhysMem for SliceMem<'_> {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let err = MemError {
            paddr,
            len: buf.len() as u64,
        };
        let start = paddr.checked_sub(self.base).ok_or(err)?;
        let start = usize::try_from(start).map_err(|_| err)?;
        let end = start.checked_add(buf.len()).ok_or(err)?;
        let src = self.bytes.get(start..end).ok_or(err)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Reads one little-endian `u32` through a [`PhysMem`].
pub fn read_u32(mem: &impl PhysMem, paddr: u64) -> Result<u32, MemError> {
    let mut b = [0u8; 4];
    mem.read(paddr, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Reads one little-endian `u64` through a [`PhysMem`].
pub fn read_u64(mem: &impl PhysMem, paddr: u64) -> Result<u64, MemError> {
    let mut b = [0u8; 8];
    mem.read(paddr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_mem_bounds() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mem = SliceMem {
            base: 0x1000,
            bytes: &bytes,
        };
        assert_eq!(read_u32(&mem, 0x1000), Ok(0x0403_0201));
        assert_eq!(read_u32(&mem, 0x1004), Ok(0x0807_0605));
        assert!(read_u32(&mem, 0x1005).is_err());
        assert!(read_u32(&mem, 0xfff).is_err());
        assert!(read_u64(&mem, u64::MAX - 2).is_err());
    }
}

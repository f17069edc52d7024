//! Kernel0's view of physical memory: the boot page tables identity-map the
//! first 4 GiB, so a physical address below 4 GiB is also its virtual one.

use bootparse::{MemError, PhysMem};

/// End of the identity map built by `boot.rs`.
pub const IDENTITY_END: u64 = 0x1_0000_0000;

/// Reads firmware-provided memory (start_info, ACPI tables) through the
/// identity map, refusing anything beyond it.
pub struct Identity;

impl PhysMem for Identity {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let err = MemError {
            paddr,
            len: buf.len() as u64,
        };
        let end = paddr.checked_add(buf.len() as u64).ok_or(err)?;
        if end > IDENTITY_END || paddr < 0x1000 {
            return Err(err);
        }
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: the address is below 4 GiB, hence identity-mapped;
            // callers only read firmware tables in RAM or ROM, where a read
            // has no side effects. Volatile because firmware owns the bytes.
            *b = unsafe { ((paddr + i as u64) as *const u8).read_volatile() };
        }
        Ok(())
    }
}

/// A read-only view of a physical range in RAM that nothing writes while
/// the view lives (the boot module).
///
/// # Safety
/// `[paddr, paddr + len)` must lie below [`IDENTITY_END`], be RAM, and not
/// be written by any CPU or device while the returned slice is alive.
pub unsafe fn ram_slice(paddr: u64, len: u64) -> &'static [u8] {
    // SAFETY: the caller guarantees the range is mapped, RAM, and immutable.
    unsafe { core::slice::from_raw_parts(paddr as *const u8, len as usize) }
}

/// A writable view of a physical range owned by kernel0 alone while the
/// returned slice is alive (a fenced partition being reloaded).
///
/// # Safety
/// `[paddr, paddr + len)` must lie below [`IDENTITY_END`], be RAM, and no
/// other CPU may access it while the slice is alive.
pub unsafe fn ram_slice_mut(paddr: u64, len: u64) -> &'static mut [u8] {
    // SAFETY: the caller guarantees exclusive access to mapped RAM.
    unsafe { core::slice::from_raw_parts_mut(paddr as *mut u8, len as usize) }
}

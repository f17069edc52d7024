//! Builds 4-level x86_64 page tables from a pool of 4 KiB frames. Ranges are
//! mapped with 2 MiB pages where both addresses and the length allow it and
//! 4 KiB pages elsewhere.

/// Entry present.
pub const PRESENT: u64 = 1;
/// Entry writable.
pub const WRITABLE: u64 = 1 << 1;
/// Write-through caching.
pub const WRITE_THROUGH: u64 = 1 << 3;
/// Caching disabled (for MMIO).
pub const NO_CACHE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PAGE: u64 = 0x1000;
const LARGE: u64 = 0x20_0000;

/// Errors while building tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingError {
    /// The frame pool is exhausted.
    OutOfFrames,
    /// An address or length is not 4 KiB aligned, or a range wraps.
    Unaligned,
    /// The virtual page is mapped already.
    AlreadyMapped(u64),
    /// A table entry points outside the pool (tables we did not build).
    ForeignTable(u64),
}

/// Page tables under construction, with their frame pool.
pub struct Builder {
    pool_virt: u64,
    pool_phys: u64,
    pool_size: u64,
    used: u64,
    pml4: u64,
}

impl Builder {
    /// Starts an empty hierarchy whose tables are carved from a pool that
    /// this code sees at `pool_virt` and the MMU at `pool_phys`.
    ///
    /// # Safety
    /// `[pool_virt, pool_virt + pool_size)` must be mapped writable, back
    /// the physical range starting at `pool_phys`, belong to the caller
    /// alone and stay untouched by anything else while the tables are used.
    pub unsafe fn new(pool_virt: u64, pool_phys: u64, pool_size: u64) -> Result<Self, PagingError> {
        if !(pool_virt | pool_phys | pool_size).is_multiple_of(PAGE) {
            return Err(PagingError::Unaligned);
        }
        let mut b = Builder {
            pool_virt,
            pool_phys,
            pool_size,
            used: 0,
            pml4: 0,
        };
        b.pml4 = b.alloc()?;
        Ok(b)
    }

    /// Physical address of the top-level table (the value for CR3).
    pub fn root(&self) -> u64 {
        self.pool_phys + (self.pml4 - self.pool_virt)
    }

    /// Frames used so far.
    pub fn frames_used(&self) -> u64 {
        self.used / PAGE
    }

    fn alloc(&mut self) -> Result<u64, PagingError> {
        if self.used + PAGE > self.pool_size {
            return Err(PagingError::OutOfFrames);
        }
        let virt = self.pool_virt + self.used;
        self.used += PAGE;
        let table = virt as *mut u64;
        for i in 0..512 {
            // SAFETY: the frame lies inside the pool (`new`'s contract) and
            // has not been handed out before.
            unsafe { table.add(i).write_volatile(0) };
        }
        Ok(virt)
    }

    fn entry(table: u64, index: u64) -> *mut u64 {
        (table + index * 8) as *mut u64
    }

    /// The table below entry `index` of `table`, created when missing.
    fn next(&mut self, table: u64, index: u64) -> Result<u64, PagingError> {
        let e = Self::entry(table, index);
        // SAFETY: `table` is a pool frame (root or created by this method),
        // and index < 512.
        let v = unsafe { e.read_volatile() };
        if v & PRESENT != 0 {
            if v & HUGE != 0 {
                return Err(PagingError::AlreadyMapped(index));
            }
            let phys = v & ADDR_MASK;
            let off = phys.wrapping_sub(self.pool_phys);
            if off >= self.used {
                return Err(PagingError::ForeignTable(phys));
            }
            return Ok(self.pool_virt + off);
        }
        let frame = self.alloc()?;
        let phys = self.pool_phys + (frame - self.pool_virt);
        // SAFETY: as above; the new entry points at a zeroed pool frame.
        unsafe { e.write_volatile(phys | PRESENT | WRITABLE) };
        Ok(frame)
    }

    /// Maps `[virt, virt + len)` to `[phys, phys + len)` with `flags`
    /// (PRESENT is implied).
    pub fn map(&mut self, virt: u64, phys: u64, len: u64, flags: u64) -> Result<(), PagingError> {
        if !(virt | phys | len).is_multiple_of(PAGE)
            || virt.checked_add(len).is_none()
            || phys.checked_add(len).is_none()
        {
            return Err(PagingError::Unaligned);
        }
        let mut off = 0;
        while off < len {
            let (v, p) = (virt + off, phys + off);
            let idx = |shift: u32| (v >> shift) & 0x1ff;
            let pdpt = self.next(self.pml4, idx(39))?;
            let pd = self.next(pdpt, idx(30))?;
            let large = v.is_multiple_of(LARGE) && p.is_multiple_of(LARGE) && len - off >= LARGE;
            let (table, index, bits, step) = if large {
                (pd, idx(21), HUGE, LARGE)
            } else {
                (self.next(pd, idx(21))?, idx(12), 0, PAGE)
            };
            let e = Self::entry(table, index);
            // SAFETY: `table` is a pool frame and index < 512.
            unsafe {
                if e.read_volatile() & PRESENT != 0 {
                    return Err(PagingError::AlreadyMapped(v));
                }
                e.write_volatile(p | flags | PRESENT | bits);
            }
            off += step;
        }
        Ok(())
    }
}

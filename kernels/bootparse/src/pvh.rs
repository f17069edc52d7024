//! The Xen PVH boot protocol as QEMU implements it: `hvm_start_info`, its
//! module list and its memory map (all little-endian, fixed layout).

use crate::{PhysMem, read_u32, read_u64};

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Size of `hvm_start_info` for version 1 (with the memory map fields).
pub const START_INFO_SIZE: u64 = 56;
/// Size of one `hvm_modlist_entry`.
pub const MODLIST_ENTRY_SIZE: u64 = 32;
/// Size of one `hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: u64 = 24;
/// Upper bound accepted for `nr_modules`.
pub const MAX_MODULES: u32 = 16;
/// Upper bound accepted for `memmap_entries`.
pub const MAX_MEMMAP_ENTRIES: u32 = 128;
/// Memory map type of usable RAM.
pub const MEM_RAM: u32 = 1;

/// Why the PVH boot information was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvhError {
    /// Some structure lies in unreadable memory.
    Unreadable,
    /// The magic word is wrong.
    BadMagic(u32),
    /// The start_info version predates the memory map.
    NoMemmap,
    /// More modules than [`MAX_MODULES`].
    TooManyModules(u32),
    /// More memory map entries than [`MAX_MEMMAP_ENTRIES`].
    TooManyMemmapEntries(u32),
    /// The caller's output buffer is smaller than the memory map.
    OutputTooSmall,
    /// The requested module does not exist.
    NoSuchModule(u32),
    /// A module's address range wraps around the address space.
    ModuleWraps,
}

impl From<crate::MemError> for PvhError {
    fn from(_: crate::MemError) -> Self {
        PvhError::Unreadable
    }
}

/// The fields of `hvm_start_info` that the boot path uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version (1 carries the memory map).
    pub version: u32,
    /// Flags (unused here).
    pub flags: u32,
    /// Number of entries in the module list.
    pub nr_modules: u32,
    /// Physical address of the module list.
    pub modlist_paddr: u64,
    /// Physical address of the command line, 0 when absent.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, 0 when absent.
    pub rsdp_paddr: u64,
    /// Physical address of the memory map.
    pub memmap_paddr: u64,
    /// Number of memory map entries.
    pub memmap_entries: u32,
}

/// One memory map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemRegion {
    /// First physical address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// E820-style type; [`MEM_RAM`] is usable RAM.
    pub kind: u32,
}

/// One boot module (QEMU's `-initrd` is module 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    /// Physical address of the first byte.
    pub paddr: u64,
    /// Length in bytes.
    pub size: u64,
    /// Physical address of the module's command line, 0 when absent.
    pub cmdline_paddr: u64,
}

/// Reads and validates `hvm_start_info` at `paddr`.
pub fn read_start_info(mem: &impl PhysMem, paddr: u64) -> Result<StartInfo, PvhError> {
    let mut b = [0u8; START_INFO_SIZE as usize];
    mem.read(paddr, &mut b[..16])?;
    let magic = crate::bytes::u32_at(&b, 0).ok_or(PvhError::Unreadable)?;
    if magic != START_INFO_MAGIC {
        return Err(PvhError::BadMagic(magic));
    }
    let version = crate::bytes::u32_at(&b, 4).ok_or(PvhError::Unreadable)?;
    if version < 1 {
        return Err(PvhError::NoMemmap);
    }
    mem.read(paddr, &mut b)?;
    let f32 = |off| crate::bytes::u32_at(&b, off).ok_or(PvhError::Unreadable);
    let f64 = |off| crate::bytes::u64_at(&b, off).ok_or(PvhError::Unreadable);
    let info = StartInfo {
        version,
        flags: f32(8)?,
        nr_modules: f32(12)?,
        modlist_paddr: f64(16)?,
        cmdline_paddr: f64(24)?,
        rsdp_paddr: f64(32)?,
        memmap_paddr: f64(40)?,
        memmap_entries: f32(48)?,
    };
    if info.nr_modules > MAX_MODULES {
        return Err(PvhError::TooManyModules(info.nr_modules));
    }
    if info.memmap_entries > MAX_MEMMAP_ENTRIES {
        return Err(PvhError::TooManyMemmapEntries(info.memmap_entries));
    }
    Ok(info)
}

/// Copies the memory map into `out`; returns the number of entries.
pub fn read_memmap(
    mem: &impl PhysMem,
    info: &StartInfo,
    out: &mut [MemRegion],
) -> Result<usize, PvhError> {
    let n = info.memmap_entries as usize;
    let out = out.get_mut(..n).ok_or(PvhError::OutputTooSmall)?;
    for (i, slot) in out.iter_mut().enumerate() {
        let at = entry_addr(info.memmap_paddr, i as u64, MEMMAP_ENTRY_SIZE)?;
        *slot = MemRegion {
            addr: read_u64(mem, at)?,
            size: read_u64(mem, at + 8)?,
            kind: read_u32(mem, at + 16)?,
        };
    }
    Ok(n)
}

/// Reads module `index` of the module list.
pub fn read_module(mem: &impl PhysMem, info: &StartInfo, index: u32) -> Result<Module, PvhError> {
    if index >= info.nr_modules {
        return Err(PvhError::NoSuchModule(index));
    }
    let at = entry_addr(info.modlist_paddr, u64::from(index), MODLIST_ENTRY_SIZE)?;
    let m = Module {
        paddr: read_u64(mem, at)?,
        size: read_u64(mem, at + 8)?,
        cmdline_paddr: read_u64(mem, at + 16)?,
    };
    m.paddr.checked_add(m.size).ok_or(PvhError::ModuleWraps)?;
    Ok(m)
}

fn entry_addr(base: u64, index: u64, size: u64) -> Result<u64, PvhError> {
    index
        .checked_mul(size)
        .and_then(|off| base.checked_add(off))
        .and_then(|a| a.checked_add(size).map(|_| a))
        .ok_or(PvhError::Unreadable)
}

/// True when `[base, base + len)` is entirely covered by RAM entries
/// (several adjacent or overlapping entries may cover it together).
pub fn is_ram(map: &[MemRegion], base: u64, len: u64) -> bool {
    let Some(end) = base.checked_add(len) else {
        return false;
    };
    let mut cursor = base;
    // Each step moves past one entry's end, so len+1 steps are enough.
    for _ in 0..=map.len() {
        if cursor >= end {
            return true;
        }
        let next = map
            .iter()
            .filter(|r| r.kind == MEM_RAM)
            .filter_map(|r| Some((r.addr, r.addr.checked_add(r.size)?)))
            .filter(|&(lo, hi)| lo <= cursor && cursor < hi)
            .map(|(_, hi)| hi)
            .max();
        match next {
            Some(hi) => cursor = hi,
            None => return false,
        }
    }
    cursor >= end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SliceMem;

    const BASE: u64 = 0x1000;

    fn image(nr_modules: u32, memmap_entries: u32) -> Vec<u8> {
        let mut m = vec![0u8; 0x400];
        let si = 0usize;
        m[si..si + 4].copy_from_slice(&START_INFO_MAGIC.to_le_bytes());
        m[si + 4..si + 8].copy_from_slice(&1u32.to_le_bytes());
        m[si + 12..si + 16].copy_from_slice(&nr_modules.to_le_bytes());
        m[si + 16..si + 24].copy_from_slice(&(BASE + 0x100).to_le_bytes());
        m[si + 32..si + 40].copy_from_slice(&0xf_5000u64.to_le_bytes());
        m[si + 40..si + 48].copy_from_slice(&(BASE + 0x200).to_le_bytes());
        m[si + 48..si + 52].copy_from_slice(&memmap_entries.to_le_bytes());
        // module 0
        m[0x100..0x108].copy_from_slice(&0x1f00_0000u64.to_le_bytes());
        m[0x108..0x110].copy_from_slice(&0x3000u64.to_le_bytes());
        // memmap: low RAM, reserved, high RAM
        let entries: [(u64, u64, u32); 3] = [
            (0, 0x9_fc00, 1),
            (0xf_0000, 0x1_0000, 2),
            (0x10_0000, 0x1ff0_0000, 1),
        ];
        for (i, (a, s, t)) in entries.iter().enumerate() {
            let o = 0x200 + i * 24;
            m[o..o + 8].copy_from_slice(&a.to_le_bytes());
            m[o + 8..o + 16].copy_from_slice(&s.to_le_bytes());
            m[o + 16..o + 20].copy_from_slice(&t.to_le_bytes());
        }
        m
    }

    #[test]
    fn parses_start_info_memmap_and_module() {
        let m = image(1, 3);
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        let si = read_start_info(&mem, BASE).unwrap();
        assert_eq!(si.nr_modules, 1);
        assert_eq!(si.rsdp_paddr, 0xf_5000);
        let mut map = [MemRegion::default(); 8];
        let n = read_memmap(&mem, &si, &mut map).unwrap();
        assert_eq!(n, 3);
        assert_eq!(map[2].addr, 0x10_0000);
        let md = read_module(&mem, &si, 0).unwrap();
        assert_eq!((md.paddr, md.size), (0x1f00_0000, 0x3000));
        assert_eq!(read_module(&mem, &si, 1), Err(PvhError::NoSuchModule(1)));
        assert!(is_ram(&map[..n], 0x200_0000, 0x20_0000));
        assert!(!is_ram(&map[..n], 0xf_0000, 0x1000));
        assert!(!is_ram(&map[..n], 0x1ff0_0000, 0x20_0000));
        assert!(!is_ram(&map[..n], u64::MAX, 2));
    }

    #[test]
    fn ram_coverage_across_adjacent_entries() {
        let map = [
            MemRegion {
                addr: 0x2000,
                size: 0x1000,
                kind: 1,
            },
            MemRegion {
                addr: 0x1000,
                size: 0x1000,
                kind: 1,
            },
        ];
        assert!(is_ram(&map, 0x1800, 0x1000));
        assert!(!is_ram(&map, 0x1800, 0x2000));
        assert!(is_ram(&map, 0x1000, 0));
    }

    #[test]
    fn rejects_malformed_start_info() {
        let mut m = image(1, 3);
        let mem = SliceMem {
            base: BASE,
            bytes: &m[..20],
        };
        assert_eq!(read_start_info(&mem, BASE), Err(PvhError::Unreadable));
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        assert_eq!(
            read_start_info(&mem, BASE + 0x3f8),
            Err(PvhError::Unreadable)
        );
        m[0] ^= 1;
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        assert!(matches!(
            read_start_info(&mem, BASE),
            Err(PvhError::BadMagic(_))
        ));
        m[0] ^= 1;
        m[4] = 0;
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        assert_eq!(read_start_info(&mem, BASE), Err(PvhError::NoMemmap));
        let m = image(99, 3);
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        assert_eq!(
            read_start_info(&mem, BASE),
            Err(PvhError::TooManyModules(99))
        );
        let m = image(1, 1000);
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        assert_eq!(
            read_start_info(&mem, BASE),
            Err(PvhError::TooManyMemmapEntries(1000))
        );
    }

    #[test]
    fn rejects_truncated_memmap_and_small_output() {
        let m = image(1, 3);
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        let si = read_start_info(&mem, BASE).unwrap();
        let mut small = [MemRegion::default(); 2];
        assert_eq!(
            read_memmap(&mem, &si, &mut small),
            Err(PvhError::OutputTooSmall)
        );
        let mut big = [MemRegion::default(); 8];
        let si_far = StartInfo {
            memmap_paddr: BASE + 0x3f0,
            ..si
        };
        assert_eq!(
            read_memmap(&mem, &si_far, &mut big),
            Err(PvhError::Unreadable)
        );
        let si_wrap = StartInfo {
            memmap_paddr: u64::MAX - 8,
            ..si
        };
        assert_eq!(
            read_memmap(&mem, &si_wrap, &mut big),
            Err(PvhError::Unreadable)
        );
    }

    #[test]
    fn rejects_wrapping_module() {
        let mut m = image(1, 3);
        m[0x108..0x110].copy_from_slice(&u64::MAX.to_le_bytes());
        let mem = SliceMem {
            base: BASE,
            bytes: &m,
        };
        let si = read_start_info(&mem, BASE).unwrap();
        assert_eq!(read_module(&mem, &si, 0), Err(PvhError::ModuleWraps));
    }
}

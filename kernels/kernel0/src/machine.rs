//! Discovery: what the firmware and QEMU tell kernel0 about the machine
//! (PVH start_info, memory map, boot module, MADT), checked against the
//! fixed layout.

use crate::error::Error;
use crate::physmem::{IDENTITY_END, Identity};
use bootparse::acpi::{self, Madt};
use bootparse::layout::{self, Range};
use bootparse::pvh::{self, MemRegion, Module, StartInfo};
use platform::println;

/// The facts kernel0 relies on, copied out of firmware memory.
pub struct Machine {
    /// PVH start_info.
    pub start_info: StartInfo,
    memmap: [MemRegion; pvh::MAX_MEMMAP_ENTRIES as usize],
    memmap_len: usize,
    /// The secondary image (`-initrd`).
    pub module: Module,
    /// The MADT.
    pub madt: Madt,
}

impl Machine {
    /// The memory map entries.
    pub fn memmap(&self) -> &[MemRegion] {
        self.memmap.get(..self.memmap_len).unwrap_or(&[])
    }
}

/// Reads start_info at `start_info_paddr` and everything it points to.
pub fn discover(start_info_paddr: u64) -> Result<Machine, Error> {
    let mem = Identity;
    let start_info = pvh::read_start_info(&mem, start_info_paddr)?;
    println!(
        "start_info at {start_info_paddr:#x}: version {}, {} module(s), memmap {} entries at {:#x}, rsdp {:#x}",
        start_info.version,
        start_info.nr_modules,
        start_info.memmap_entries,
        start_info.memmap_paddr,
        start_info.rsdp_paddr
    );
    let mut memmap = [MemRegion::default(); pvh::MAX_MEMMAP_ENTRIES as usize];
    let memmap_len = pvh::read_memmap(&mem, &start_info, &mut memmap)?;
    for r in memmap.iter().take(memmap_len) {
        println!(
            "  mem {:#012x}..{:#012x} type {}",
            r.addr,
            r.addr.saturating_add(r.size),
            r.kind
        );
    }
    if start_info.nr_modules == 0 {
        return Err(Error::NoModule);
    }
    let module = pvh::read_module(&mem, &start_info, 0)?;
    println!(
        "module 0: {:#x}..{:#x} ({} bytes)",
        module.paddr,
        module.paddr + module.size,
        module.size
    );
    let madt = read_madt(&start_info)?;
    Ok(Machine {
        start_info,
        memmap,
        memmap_len,
        module,
        madt,
    })
}

fn read_madt(si: &StartInfo) -> Result<Madt, Error> {
    let mem = Identity;
    let rsdp_paddr = if si.rsdp_paddr != 0 {
        si.rsdp_paddr
    } else {
        scan_bios_area()?
    };
    let rsdp = acpi::read_rsdp(&mem, rsdp_paddr)?;
    let mut buf = [0u8; 4096];
    let table = acpi::find_table(&mem, &rsdp, b"APIC", &mut buf)?;
    let madt = acpi::parse_madt(table)?;
    println!(
        "ACPI: rsdp {rsdp_paddr:#x} rev {}, {}, MADT {} bytes, lapic {:#x}",
        rsdp.revision,
        if rsdp.xsdt.is_some() { "XSDT" } else { "RSDT" },
        table.len(),
        madt.lapic_addr
    );
    for c in madt.cpus() {
        println!(
            "  cpu uid {} apic id {} {}",
            c.uid,
            c.apic_id,
            if c.enabled { "enabled" } else { "disabled" }
        );
    }
    Ok(madt)
}

/// Searches the BIOS area 0xE0000..0x100000 for the RSDP, a page at a
/// time (plus a small overlap so a pointer across pages is still seen).
fn scan_bios_area() -> Result<u64, Error> {
    let mut chunk = [0u8; 0x1000 + 0x20];
    for base in (0xe_0000u64..0x10_0000).step_by(0x1000) {
        let len = (0x10_0000 - base).min(chunk.len() as u64) as usize;
        let area = &mut chunk[..len];
        bootparse::PhysMem::read(&Identity, base, area)
            .map_err(|_| Error::Acpi(acpi::AcpiError::Unreadable))?;
        if let Some(p) = acpi::scan_rsdp(area, base) {
            return Ok(p);
        }
    }
    Err(Error::Acpi(acpi::AcpiError::NoRsdp))
}

/// Checks that every fixed region is RAM, below the identity map, and that
/// none collides with the boot module or the firmware's start_info tables.
pub fn check_layout(m: &Machine, secondaries: u32, image_end: u64) -> Result<(), Error> {
    let k0 = layout::kernel0();
    if image_end > k0.base + k0.size {
        return Err(Error::Layout("kernel0 image larger than its partition"));
    }
    let trampoline = Range {
        base: layout::TRAMPOLINE_PHYS,
        size: 0x1000,
    };
    let module = Range {
        base: m.module.paddr,
        size: m.module.size,
    };
    let si = &m.start_info;
    let firmware = [
        Range {
            base: si.memmap_paddr,
            size: u64::from(si.memmap_entries) * pvh::MEMMAP_ENTRY_SIZE,
        },
        Range {
            base: si.modlist_paddr,
            size: u64::from(si.nr_modules) * pvh::MODLIST_ENTRY_SIZE,
        },
    ];
    let mut owned = [trampoline; 3 + crate::nodes::MAX_SECONDARIES];
    owned[1] = k0;
    owned[2] = layout::shared();
    for n in 1..=secondaries {
        owned[2 + n as usize] =
            layout::partition(n).ok_or(Error::Layout("too many secondaries"))?;
    }
    let owned = &owned[..3 + secondaries as usize];
    for r in owned {
        let end = r.end().ok_or(Error::Layout("region wraps"))?;
        if end > IDENTITY_END || !pvh::is_ram(m.memmap(), r.base, r.size) {
            return Err(Error::Layout(
                "a fixed region is not RAM (use -m 512M or more)",
            ));
        }
        if r.overlaps(&module) {
            return Err(Error::Layout("the boot module overlaps a fixed region"));
        }
        if firmware.iter().any(|f| f.size != 0 && f.overlaps(r)) {
            return Err(Error::Layout("firmware tables overlap a fixed region"));
        }
    }
    if module.end().is_none_or(|e| e > IDENTITY_END)
        || !pvh::is_ram(m.memmap(), module.base, module.size)
    {
        return Err(Error::Layout("the boot module is not in RAM below 4 GiB"));
    }
    Ok(())
}

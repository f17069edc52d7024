//! The node's own page tables: its partition at `partition_virt`, the shared
//! region at `shared_virt`, the local APIC page uncached. Nothing else is
//! mapped, so a stray access (kernel0, another partition, low memory) faults.

use bootparse::bootparams::BootParams;
use platform::cell::RacyCell;
use platform::paging::{Builder, NO_CACHE, PagingError, WRITABLE, WRITE_THROUGH};

const POOL_FRAMES: usize = 8;

#[repr(C, align(4096))]
struct Pool([u8; POOL_FRAMES * 4096]);

static POOL: RacyCell<Pool> = RacyCell::new(Pool([0; POOL_FRAMES * 4096]));

/// Builds the tables and loads them into CR3.
pub fn switch_to_own_tables(p: &BootParams) -> Result<(), PagingError> {
    let virt = POOL.get() as u64;
    // The pool is in our image, hence inside the partition mapped at
    // partition_virt: translate by the partition offset.
    let phys = virt - p.partition_virt + p.partition_phys;
    // SAFETY: the pool is a static of this image, used only here, on this
    // CPU, and mapped writable by both the entry tables and the new ones.
    let mut b = unsafe { Builder::new(virt, phys, (POOL_FRAMES * 4096) as u64)? };
    b.map(
        p.partition_virt,
        p.partition_phys,
        p.partition_size,
        WRITABLE,
    )?;
    b.map(p.shared_virt, p.shared_phys, p.shared_size, WRITABLE)?;
    b.map(
        p.lapic_phys,
        p.lapic_phys,
        0x1000,
        WRITABLE | NO_CACHE | WRITE_THROUGH,
    )?;
    // SAFETY: the new tables map this code, stack, statics and everything
    // used from here on at the same virtual addresses as the entry tables.
    unsafe { platform::cpu::write_cr3(b.root()) };
    Ok(())
}

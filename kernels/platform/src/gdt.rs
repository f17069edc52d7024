//! A flat 64-bit GDT: null, kernel code, kernel data.

use core::arch::asm;

/// Kernel code selector.
pub const CODE_SEL: u16 = 0x08;
/// Kernel data selector.
pub const DATA_SEL: u16 = 0x10;

static GDT: [u64; 3] = [0, 0x00af_9a00_0000_ffff, 0x00cf_9200_0000_ffff];

#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

/// Loads the GDT and reloads every segment register.
pub fn load() {
    let ptr = Pointer {
        limit: (core::mem::size_of_val(&GDT) - 1) as u16,
        base: GDT.as_ptr() as u64,
    };
    // SAFETY: GDT is a static with valid flat descriptors; CS is reloaded by
    // a far return to the next instruction and the data selectors point at
    // the data descriptor, so execution continues unchanged.
    unsafe {
        asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "mov fs, {ds:x}",
            "mov gs, {ds:x}",
            ptr = in(reg) &ptr,
            cs = const CODE_SEL as u64,
            ds = in(reg) DATA_SEL as u64,
            tmp = lateout(reg) _,
        );
    }
}

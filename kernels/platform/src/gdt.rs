//! A flat 64-bit GDT (null, kernel code, kernel data) plus a TSS whose
//! interrupt stack table gives the double fault, NMI and machine check their
//! own stacks. A stack overflow then ends in a #DF handled on a good stack
//! (reported, node halted) instead of a triple fault that resets the CPU
//! without a word.
//!
//! Each kernel image runs on exactly one CPU, so one static TSS per image
//! is one per CPU.

use crate::cell::RacyCell;
use core::arch::asm;

/// Kernel code selector.
pub const CODE_SEL: u16 = 0x08;
/// Kernel data selector.
pub const DATA_SEL: u16 = 0x10;
/// TSS selector (a 16-byte system descriptor: GDT slots 3 and 4).
pub const TSS_SEL: u16 = 0x18;

/// IST slot of the double fault handler.
pub const IST_DOUBLE_FAULT: u8 = 1;
/// IST slot of the NMI handler.
pub const IST_NMI: u8 = 2;
/// IST slot of the machine check handler.
pub const IST_MACHINE_CHECK: u8 = 3;
/// Bytes of each IST stack (the fatal-exception reporter formats two lines).
pub const IST_STACK_SIZE: usize = 16 * 1024;
const IST_STACKS: usize = 3;

/// The 64-bit task state segment (Intel SDM vol. 3, 8.7).
#[repr(C, packed(4))]
struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

const _: () = assert!(core::mem::size_of::<Tss>() == 104);

#[repr(C, align(16))]
struct IstStacks([[u8; IST_STACK_SIZE]; IST_STACKS]);

static TSS: RacyCell<Tss> = RacyCell::new(Tss {
    reserved0: 0,
    rsp: [0; 3],
    reserved1: 0,
    ist: [0; 7],
    reserved2: 0,
    reserved3: 0,
    // No I/O permission bitmap: the base points past the segment limit.
    iomap_base: core::mem::size_of::<Tss>() as u16,
});
static STACKS: RacyCell<IstStacks> = RacyCell::new(IstStacks([[0; IST_STACK_SIZE]; IST_STACKS]));
static GDT: RacyCell<[u64; 5]> = RacyCell::new([
    0,
    0x00af_9a00_0000_ffff,
    0x00cf_9200_0000_ffff,
    0, // TSS low, filled in by `load`
    0, // TSS high
]);

#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

/// The two GDT words of an available 64-bit TSS at `base`.
fn tss_descriptor(base: u64, limit: u64) -> [u64; 2] {
    let low = (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | 0x89 << 40 // present, DPL 0, type 9: available 64-bit TSS
        | ((limit >> 16) & 0xf) << 48
        | ((base >> 24) & 0xff) << 56;
    [low, base >> 32]
}

/// Loads the GDT, reloads every segment register and loads the TSS with
/// its IST stacks. Call once per image, on its CPU, before interrupts are
/// enabled.
pub fn load() {
    let tss = TSS.get();
    // SAFETY: called once, on the one CPU this image runs on, before any
    // interrupt can use the TSS or GDT; nothing else references them yet.
    unsafe {
        let stacks = &*STACKS.get();
        for (slot, stack) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK]
            .into_iter()
            .zip(stacks.0.iter())
        {
            // Stacks grow down: the slot holds the top (16-aligned).
            let top = stack.as_ptr() as u64 + IST_STACK_SIZE as u64;
            let ist = core::ptr::addr_of_mut!((*tss).ist);
            let mut table = ist.read_unaligned();
            table[usize::from(slot) - 1] = top;
            ist.write_unaligned(table);
        }
        let [lo, hi] = tss_descriptor(tss as u64, core::mem::size_of::<Tss>() as u64 - 1);
        let gdt = &mut *GDT.get();
        gdt[3] = lo;
        gdt[4] = hi;
    }
    let ptr = Pointer {
        limit: (core::mem::size_of::<[u64; 5]>() - 1) as u16,
        base: GDT.get() as u64,
    };
    // SAFETY: GDT is a static with valid flat descriptors and a TSS
    // descriptor for a live static TSS; CS is reloaded by a far return to
    // the next instruction, the data selectors point at the data
    // descriptor, so execution continues unchanged. `ltr` marks the TSS
    // busy; it is loaded once per image.
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
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = const CODE_SEL as u64,
            ds = in(reg) DATA_SEL as u64,
            tss = in(reg) TSS_SEL as u64,
            tmp = lateout(reg) _,
        );
    }
}

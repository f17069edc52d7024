//! The AP start-up trampoline. A SIPI starts the AP in real mode at
//! `TRAMPOLINE_PHYS`; this code switches to protected mode, loads the page
//! tables named in its parameter slots, enters long mode, bumps the `ack`
//! word and jumps to the secondary's entry with `rdi` = its parameter block.
//!
//! The code is position-dependent on `TRAMPOLINE_PHYS` (0x8000): addresses
//! are written as `0x8000 + (label - trampoline_start)`.

use bootparse::layout::TRAMPOLINE_PHYS;
use core::arch::global_asm;
use core::sync::atomic::{AtomicU32, Ordering};

global_asm!(
    ".section .text.trampoline, \"ax\"",
    ".global trampoline_start",
    ".global trampoline_end",
    ".global trampoline_cr3",
    ".global trampoline_entry",
    ".global trampoline_arg",
    ".global trampoline_ack",
    ".balign 16",
    ".code16",
    "trampoline_start:",
    "cli",
    "cld",
    "xorw %ax, %ax",
    "movw %ax, %ds",
    "lgdtl 0x8000 + (tr_gdtr - trampoline_start)",
    "movl %cr0, %eax",
    "orl $1, %eax",
    "movl %eax, %cr0",
    "ljmpl $0x08, $(0x8000 + (tr_pm32 - trampoline_start))",
    ".code32",
    "tr_pm32:",
    "movw $0x10, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movl %cr4, %eax",
    "orl $0x20, %eax", // PAE
    "movl %eax, %cr4",
    "movl 0x8000 + (trampoline_cr3 - trampoline_start), %eax",
    "movl %eax, %cr3",
    "movl $0xc0000080, %ecx",
    "rdmsr",
    "orl $0x100, %eax", // EFER.LME
    "wrmsr",
    "movl %cr0, %eax",
    "orl $0x80010000, %eax", // PG | WP
    "movl %eax, %cr0",
    "ljmpl $0x18, $(0x8000 + (tr_lm64 - trampoline_start))",
    ".code64",
    "tr_lm64:",
    "movw $0x10, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movq trampoline_entry(%rip), %rax",
    "movq trampoline_arg(%rip), %rdi",
    "lock incl trampoline_ack(%rip)",
    "xorl %ebp, %ebp",
    "jmpq *%rax",
    ".balign 8",
    "tr_gdt:",
    ".quad 0",
    ".quad 0x00cf9a000000ffff", // 0x08: 32-bit code
    ".quad 0x00cf92000000ffff", // 0x10: data
    ".quad 0x00af9a000000ffff", // 0x18: 64-bit code
    "tr_gdtr:",
    ".word tr_gdtr - tr_gdt - 1",
    ".long 0x8000 + (tr_gdt - trampoline_start)",
    ".balign 8",
    "trampoline_entry: .quad 0",
    "trampoline_arg: .quad 0",
    "trampoline_cr3: .long 0",
    "trampoline_ack: .long 0",
    "trampoline_end:",
    ".text",
    options(att_syntax)
);

unsafe extern "C" {
    static trampoline_start: u8;
    static trampoline_end: u8;
    static trampoline_cr3: u8;
    static trampoline_entry: u8;
    static trampoline_arg: u8;
    static trampoline_ack: u8;
}

/// What the AP should run once in long mode.
pub struct Launch {
    /// Physical address of the PML4 (below 4 GiB); it must identity-map the
    /// trampoline page and map `entry`.
    pub cr3: u32,
    /// Virtual entry address.
    pub entry: u64,
    /// Value passed in `rdi`.
    pub arg: u64,
}

fn offset_of(sym: *const u8) -> u64 {
    sym as u64 - core::ptr::addr_of!(trampoline_start) as u64
}

fn slot(sym: *const u8) -> *mut u8 {
    (TRAMPOLINE_PHYS + offset_of(sym)) as *mut u8
}

/// Size of the trampoline code and data.
pub fn size() -> u64 {
    offset_of(core::ptr::addr_of!(trampoline_end))
}

/// Copies the trampoline to `TRAMPOLINE_PHYS` and fills its parameters.
///
/// # Safety
/// The trampoline page must be identity-mapped, RAM owned by kernel0, and
/// no AP may be executing from it.
pub unsafe fn install(launch: &Launch) {
    let src = core::ptr::addr_of!(trampoline_start);
    let len = size() as usize;
    // SAFETY: the source is the trampoline in kernel0's image; the caller
    // guarantees the destination page is kernel0's and not in use. The
    // parameter slots lie inside the copied range and are naturally aligned.
    unsafe {
        core::ptr::copy_nonoverlapping(src, TRAMPOLINE_PHYS as *mut u8, len);
        slot(core::ptr::addr_of!(trampoline_cr3))
            .cast::<u32>()
            .write_volatile(launch.cr3);
        slot(core::ptr::addr_of!(trampoline_entry))
            .cast::<u64>()
            .write_volatile(launch.entry);
        slot(core::ptr::addr_of!(trampoline_arg))
            .cast::<u64>()
            .write_volatile(launch.arg);
        slot(core::ptr::addr_of!(trampoline_ack))
            .cast::<u32>()
            .write_volatile(0);
    }
}

/// How many APs have passed through the installed trampoline into long mode.
pub fn acks() -> u32 {
    let p = slot(core::ptr::addr_of!(trampoline_ack)).cast::<u32>();
    // SAFETY: the slot lies in the installed, identity-mapped trampoline
    // page; the AP increments it atomically, so read it atomically too.
    unsafe { AtomicU32::from_ptr(p).load(Ordering::Acquire) }
}

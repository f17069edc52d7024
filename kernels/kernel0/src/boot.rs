//! PVH entry: QEMU jumps to `pvh_start` in 32-bit protected mode with paging
//! off and `ebx` pointing at `hvm_start_info`. The code identity-maps the
//! first 4 GiB with 2 MiB pages (the top GiB, where the APIC and other MMIO
//! live, uncached), enters long mode and calls `kernel0_main(start_info)`.

use core::arch::global_asm;

/// Bytes of kernel0's boot stack.
pub const STACK_SIZE: usize = 256 * 1024;

global_asm!(
    // The Xen ELF note QEMU looks for: type 18 (PHYS32_ENTRY), name "Xen",
    // an 8-byte entry address. 4-byte alignment keeps the descriptor right
    // after the name, where QEMU reads it.
    ".section .note.Xen, \"a\"",
    ".balign 4",
    ".long 4",
    ".long 8",
    ".long 18",
    ".asciz \"Xen\"",
    ".long pvh_start",
    ".long 0",

    ".section .bss.boot, \"aw\", @nobits",
    ".balign 4096",
    ".global boot_pd",
    ".global boot_stack_guard",
    "boot_pml4: .skip 4096",
    "boot_pdpt: .skip 4096",
    "boot_pd:   .skip 4096 * 4",
    // Unmapped by `guard_stack` once in Rust: an overflow of the stack
    // above faults (#PF, then #DF on its IST stack) instead of silently
    // overwriting whatever lies below.
    "boot_stack_guard: .skip 4096",
    "boot_stack: .skip {stack}",
    "boot_stack_top:",

    ".section .rodata.boot, \"a\"",
    ".balign 8",
    "boot_gdt:",
    ".quad 0",
    ".quad 0x00af9a000000ffff", // 0x08: 64-bit code
    ".quad 0x00cf92000000ffff", // 0x10: data
    "boot_gdtr:",
    ".word boot_gdtr - boot_gdt - 1",
    ".long boot_gdt",

    ".section .text.boot, \"ax\"",
    ".code32",
    ".global pvh_start",
    "pvh_start:",
    "cli",
    "cld",
    "movl %ebx, %esi",
    // PML4[0] -> PDPT; PDPT[0..4] -> four page directories.
    "movl $boot_pdpt + 3, boot_pml4",
    "xorl %ecx, %ecx",
    "1:",
    "movl %ecx, %eax",
    "shll $12, %eax",
    "addl $boot_pd + 3, %eax",
    "movl %eax, boot_pdpt(,%ecx,8)",
    "incl %ecx",
    "cmpl $4, %ecx",
    "jb 1b",
    // 2048 large pages cover 4 GiB; from 3 GiB on, uncached (MMIO hole).
    "xorl %ecx, %ecx",
    "2:",
    "movl %ecx, %eax",
    "shll $21, %eax",
    "orl $0x83, %eax",
    "cmpl $1536, %ecx",
    "jb 3f",
    "orl $0x18, %eax",
    "3:",
    "movl %eax, boot_pd(,%ecx,8)",
    "movl $0, boot_pd+4(,%ecx,8)",
    "incl %ecx",
    "cmpl $2048, %ecx",
    "jb 2b",
    "movl $boot_pml4, %eax",
    "movl %eax, %cr3",
    "movl %cr4, %eax",
    "orl $0x20, %eax", // PAE
    "movl %eax, %cr4",
    "movl $0xc0000080, %ecx",
    "rdmsr",
    "orl $0x100, %eax", // EFER.LME
    "wrmsr",
    "movl %cr0, %eax",
    "orl $0x80010001, %eax", // PG | WP | PE
    "movl %eax, %cr0",
    "lgdt boot_gdtr",
    "ljmp $0x08, $3f",
    ".code64",
    "3:",
    "movw $0x10, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movw %ax, %fs",
    "movw %ax, %gs",
    "movq $boot_stack_top, %rsp",
    "movl %esi, %edi",
    "xorl %ebp, %ebp",
    "call {main}",
    "ud2",
    ".text",
    stack = const STACK_SIZE,
    main = sym crate::kernel0_main,
    options(att_syntax)
);

unsafe extern "C" {
    static boot_pd: u8;
    static boot_stack_guard: u8;
}

/// 4 KiB page table that replaces the 2 MiB mapping around the guard page.
#[repr(C, align(4096))]
struct PageTable([u64; 512]);

static GUARD_PT: platform::cell::RacyCell<PageTable> =
    platform::cell::RacyCell::new(PageTable([0; 512]));

/// Unmaps the page below the boot stack: the 2 MiB page holding it is
/// remapped with 4 KiB pages, all present and writable but that one.
/// Returns the guard page's address.
pub fn guard_stack() -> u64 {
    let guard = core::ptr::addr_of!(boot_stack_guard) as u64;
    let big = guard & !0x1f_ffff;
    let pt = GUARD_PT.get();
    // SAFETY: kernel0 runs on one CPU and calls this once, before anything
    // else uses GUARD_PT; the four boot page directories are contiguous
    // (`pvh_start` links PDPT[i] to boot_pd + i * 4096), so entry guard>>21
    // of the array is the one mapping `guard` (below 4 GiB); the new table
    // maps the same 2 MiB identically (write-back, writable) except the
    // guard page, which nothing uses, and CR3 is reloaded to flush the TLB.
    unsafe {
        for (i, e) in (*pt).0.iter_mut().enumerate() {
            let addr = big + i as u64 * 0x1000;
            *e = if addr == guard { 0 } else { addr | 0x3 };
        }
        let pde = (core::ptr::addr_of!(boot_pd) as *mut u64).add((guard >> 21) as usize);
        pde.write_volatile(pt as u64 | 0x3);
        platform::cpu::write_cr3(platform::cpu::cr3());
    }
    guard
}

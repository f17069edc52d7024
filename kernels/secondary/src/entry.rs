//! The image's entry point: kernel0's trampoline jumps here in long mode
//! with `rdi` = parameter block address; set up our own stack and call the
//! image's main (`secondary_image_main`, defined by [`crate::image!`] in
//! each binary). An unmapped guard page sits below the stack, so an
//! overflow faults instead of running into `.bss`.

use core::arch::global_asm;

/// Bytes of the node's stack.
pub const STACK_SIZE: usize = 64 * 1024;

global_asm!(
    ".section .bss.stack, \"aw\", @nobits",
    ".balign 4096",
    ".global secondary_stack_guard",
    "secondary_stack_guard: .skip 4096",
    "secondary_stack: .skip {stack}",
    "secondary_stack_top:",
    ".section .text.entry, \"ax\"",
    ".global secondary_start",
    "secondary_start:",
    "lea rsp, [rip + secondary_stack_top]",
    "xor ebp, ebp",
    "call secondary_image_main",
    "ud2",
    ".text",
    stack = const STACK_SIZE,
);

unsafe extern "C" {
    static secondary_stack_guard: u8;
}

/// Virtual address of the guard page below the stack.
pub fn stack_guard() -> u64 {
    // Only the symbol's address is taken; the page is never read.
    core::ptr::addr_of!(secondary_stack_guard) as u64
}

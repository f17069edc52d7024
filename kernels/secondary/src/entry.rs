//! The image's entry point: kernel0's trampoline jumps here in long mode
//! with `rdi` = parameter block address; set up our own stack and call Rust.

use core::arch::global_asm;

/// Bytes of the node's stack.
pub const STACK_SIZE: usize = 64 * 1024;

global_asm!(
    ".section .bss.stack, \"aw\", @nobits",
    ".balign 16",
    "secondary_stack: .skip {stack}",
    "secondary_stack_top:",
    ".section .text.entry, \"ax\"",
    ".global secondary_start",
    "secondary_start:",
    "lea rsp, [rip + secondary_stack_top]",
    "xor ebp, ebp",
    "call {main}",
    "ud2",
    ".text",
    stack = const STACK_SIZE,
    main = sym crate::secondary_main,
);

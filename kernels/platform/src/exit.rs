//! Ending a QEMU run through the isa-debug-exit device (iobase 0xf4): writing
//! `v` makes QEMU exit with status `(v << 1) | 1`.

use crate::port::outl;

/// Value written for "every check passed" (QEMU status 33).
pub const SUCCESS: u32 = 0x10;
/// Value written when a check failed (QEMU status 35).
pub const FAILURE: u32 = 0x11;
/// Value written by the panic handler (QEMU status 37).
pub const PANIC: u32 = 0x12;
/// Value written on an unexpected CPU exception (QEMU status 39).
pub const EXCEPTION: u32 = 0x13;

/// QEMU's exit status for an exit value.
pub const fn qemu_status(v: u32) -> u32 {
    (v << 1) | 1
}

/// Asks QEMU to exit; halts if the device is absent.
pub fn exit(v: u32) -> ! {
    // SAFETY: port 0xf4 is the debug-exit device (or nothing); writing it
    // touches no memory.
    unsafe { outl(0xf4, v) };
    crate::cpu::halt_forever()
}

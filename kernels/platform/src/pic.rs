//! The legacy 8259 PICs: remapped away from the exception vectors and masked,
//! so that only local APIC interrupts reach the CPU.

use crate::port::outb;

/// Remaps both PICs to vectors 0x20..0x30 and masks every line.
pub fn disable() {
    let seq: [(u16, u8); 10] = [
        (0x20, 0x11), // ICW1: init, expect ICW4
        (0xa0, 0x11),
        (0x21, 0x20), // ICW2: master base vector
        (0xa1, 0x28), // ICW2: slave base vector
        (0x21, 0x04), // ICW3: slave on IRQ2
        (0xa1, 0x02),
        (0x21, 0x01), // ICW4: 8086 mode
        (0xa1, 0x01),
        (0x21, 0xff), // mask all
        (0xa1, 0xff),
    ];
    for (port, v) in seq {
        // SAFETY: the PICs belong to kernel0's machine set-up; these writes
        // only reprogram and mask them.
        unsafe { outb(port, v) };
    }
}

//! The COM1 16550 UART, polled.

use crate::port::{inb, outb};

const COM1: u16 = 0x3f8;
const LSR_THR_EMPTY: u8 = 0x20;
/// Bound on polls of the line status before a byte is written regardless.
const TX_SPIN_LIMIT: u32 = 100_000;

/// Programs COM1 for 115200 8N1 with FIFOs, interrupts off.
pub fn init() {
    let regs: [(u16, u8); 7] = [
        (1, 0x00), // no UART interrupts
        (3, 0x80), // DLAB on
        (0, 0x01), // divisor 1 = 115200 baud
        (1, 0x00),
        (3, 0x03), // 8N1, DLAB off
        (2, 0xc7), // FIFOs on and cleared
        (4, 0x03), // DTR, RTS
    ];
    for (off, v) in regs {
        // SAFETY: COM1 belongs to the kernels; these writes only configure it.
        unsafe { outb(COM1 + off, v) };
    }
}

/// Writes one byte, waiting (bounded) for the transmitter.
pub fn write_byte(b: u8) {
    for _ in 0..TX_SPIN_LIMIT {
        // SAFETY: reading the line status register has no side effects.
        if unsafe { inb(COM1 + 5) } & LSR_THR_EMPTY != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: writing the transmit register sends one byte.
    unsafe { outb(COM1, b) };
}

/// Writes bytes, turning `\n` into `\r\n`.
pub fn write_bytes(s: &[u8]) {
    for &b in s {
        if b == b'\n' {
            write_byte(b'\r');
        }
        write_byte(b);
    }
}

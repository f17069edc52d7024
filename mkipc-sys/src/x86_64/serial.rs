//! A 16550 UART, polled: enough for a kernel's console.

use super::port::{inb, outb};

/// I/O port base of the first PC serial port.
pub const COM1: u16 = 0x3f8;
const LSR: u16 = 5;
const LSR_THR_EMPTY: u8 = 0x20;
/// Bound on polls of the line status before a byte is written regardless:
/// a stuck or absent UART slows the console down instead of hanging it.
const TX_SPIN_LIMIT: u32 = 100_000;

/// A 16550-compatible UART at an I/O port base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart16550 {
    base: u16,
}

impl Uart16550 {
    /// The UART at port `base` (e.g. [`COM1`]).
    ///
    /// # Safety
    /// Ring 0 only, and the caller owns the device: nothing else programs
    /// the eight ports from `base` on (sharing it between CPUs for output is
    /// fine; bytes of concurrent writers may interleave).
    pub const unsafe fn new(base: u16) -> Self {
        Uart16550 { base }
    }

    /// Programs 115200 baud, 8N1, FIFOs on, UART interrupts off.
    pub fn init(&self) {
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
            // SAFETY: `new`'s contract: the device is ours; these writes
            // only configure it.
            unsafe { outb(self.base + off, v) };
        }
    }

    /// Writes one byte, waiting (bounded) for the transmitter.
    pub fn write_byte(&self, b: u8) {
        for _ in 0..TX_SPIN_LIMIT {
            // SAFETY: reading the line status register has no side effects.
            if unsafe { inb(self.base + LSR) } & LSR_THR_EMPTY != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        // SAFETY: `new`'s contract; writing the transmit register sends one
        // byte.
        unsafe { outb(self.base, b) };
    }

    /// Writes bytes, turning `\n` into `\r\n`.
    pub fn write_bytes(&self, s: &[u8]) {
        for &b in s {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }
}

impl core::fmt::Write for Uart16550 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

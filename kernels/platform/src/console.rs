//! Line-oriented serial console. Every kernel prefixes its lines with its
//! node name; once the shared region is attached, whole lines are serialised
//! between CPUs by a lock word in the control page. The lock wait is bounded:
//! a node that died holding it cannot silence the others.

use crate::control::Control;
use crate::serial::{COM1, Uart16550};
use bootparse::layout::control::CONSOLE_LOCK;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// How long a line waits for the console lock before writing anyway.
const LOCK_TIMEOUT_US: u64 = 50_000;

static NODE: AtomicU32 = AtomicU32::new(0);
static CONTROL: AtomicUsize = AtomicUsize::new(0);
static BROKEN_LOCKS: AtomicU64 = AtomicU64::new(0);

// SAFETY: COM1 belongs to the kernels (every node writes whole lines under
// the console lock; kernel0 programs it once before any node runs).
const UART: Uart16550 = unsafe { Uart16550::new(COM1) };

/// Initialises COM1 and sets the line prefix for node `node` (0 = kernel0).
pub fn init(node: u32) {
    UART.init();
    NODE.store(node, Ordering::Relaxed);
}

/// Starts serialising lines through the control page's lock word.
pub fn attach(control: &Control) {
    CONTROL.store(
        control.word(0) as *const AtomicU64 as usize,
        Ordering::Release,
    );
}

/// Lines written after waiting out the lock timeout.
pub fn broken_locks() -> u64 {
    BROKEN_LOCKS.load(Ordering::Relaxed)
}

fn control() -> Option<Control> {
    let base = CONTROL.load(Ordering::Acquire);
    if base == 0 {
        return None;
    }
    // SAFETY: `attach` stored the base of a live `Control`, whose contract
    // already guarantees the mapping for the rest of the kernel's life.
    Some(unsafe { Control::new(base as *mut u8) })
}

/// Frees the console lock if node `node` holds it (kernel0 calls this after
/// fencing a dead node).
pub fn release_if_held_by(node: u32) -> bool {
    let Some(ctl) = control() else { return false };
    let owner = u64::from(node) + 1;
    ctl.word(CONSOLE_LOCK)
        .compare_exchange(owner, 0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

struct Guard(Option<Control>);

fn lock() -> Guard {
    let Some(ctl) = control() else {
        return Guard(None);
    };
    let me = u64::from(NODE.load(Ordering::Relaxed)) + 1;
    let word = ctl.word(CONSOLE_LOCK);
    let deadline = crate::tsc::deadline_after_us(LOCK_TIMEOUT_US);
    loop {
        // Acquire pairs with the Release in `Guard::drop` of the last owner.
        if word
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Guard(Some(ctl));
        }
        if crate::tsc::passed(deadline) {
            BROKEN_LOCKS.fetch_add(1, Ordering::Relaxed);
            word.store(me, Ordering::Relaxed);
            return Guard(Some(ctl));
        }
        crate::cpu::pause();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(ctl) = self.0 {
            // Release pairs with the Acquire in `lock`.
            ctl.word(CONSOLE_LOCK).store(0, Ordering::Release);
        }
    }
}

/// Writes one line without the node prefix (for summary lines a script
/// matches at the start of the line).
pub fn print_bare_line(args: fmt::Arguments) {
    let _guard = lock();
    let mut out = UART;
    let _ = out.write_fmt(args);
    let _ = out.write_str("\n");
}

/// Writes one prefixed line (used by [`crate::println`]).
pub fn print_line(args: fmt::Arguments) {
    let _guard = lock();
    let node = NODE.load(Ordering::Relaxed);
    let mut out = UART;
    let _ = if node == 0 {
        out.write_str("[k0] ")
    } else {
        write!(out, "[n{node}] ")
    };
    let _ = out.write_fmt(args);
    let _ = out.write_str("\n");
}

/// Prints one line on the serial console, prefixed with the node name.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}

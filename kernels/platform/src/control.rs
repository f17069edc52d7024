//! Atomic access to the boot control page at the start of the shared region
//! (layout in `bootparse::layout::control`). The peer may write this memory at
//! any time, so it is only ever touched through atomics.

use bootparse::layout::{CONTROL_SIZE, MAX_NODES, control};
use core::sync::atomic::{AtomicU64, Ordering};

/// Handle on the control page as mapped by this kernel.
#[derive(Clone, Copy)]
pub struct Control {
    base: *mut u64,
}

// SAFETY: the handle only hands out atomics; sharing it between contexts
// (main code and interrupt handlers) cannot cause a data race.
unsafe impl Sync for Control {}
// SAFETY: as above, the pointer is an address, not ownership.
unsafe impl Send for Control {}

impl Control {
    /// Wraps the control page mapped at `base`.
    ///
    /// # Safety
    /// `base` must be 8-byte aligned and map `CONTROL_SIZE` bytes of the
    /// shared region, readable and writable, for the rest of the kernel's
    /// life, and that memory must only be accessed atomically.
    pub const unsafe fn new(base: *mut u8) -> Self {
        Control { base: base.cast() }
    }

    /// The word at byte offset `off` of the page. Offsets come from the
    /// layout constants; an offset outside the page is a programming error.
    pub fn word(&self, off: u64) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off + 8 <= CONTROL_SIZE,
            "control offset"
        );
        // SAFETY: `new`'s contract: base maps CONTROL_SIZE bytes accessed only
        // atomically; `off` is in bounds and aligned (checked above).
        unsafe { AtomicU64::from_ptr(self.base.add((off / 8) as usize)) }
    }

    /// Word `field` of node `node`'s block.
    pub fn node(&self, node: u32, field: u64) -> &AtomicU64 {
        assert!((node as usize) < MAX_NODES, "node id");
        self.word(control::node_word(u64::from(node), field))
    }

    /// Zeroes the page and stamps its magic (kernel0, before any node runs).
    pub fn init(&self) {
        for off in (0..CONTROL_SIZE).step_by(8) {
            self.word(off).store(0, Ordering::Relaxed);
        }
        // Release pairs with the Acquire in `is_initialised` on the nodes.
        self.word(control::MAGIC)
            .store(control::MAGIC_VALUE, Ordering::Release);
    }

    /// True once kernel0 has run [`Control::init`].
    pub fn is_initialised(&self) -> bool {
        self.word(control::MAGIC).load(Ordering::Acquire) == control::MAGIC_VALUE
    }
}

//! A `Sync` cell for statics that are written during single-threaded
//! initialisation (descriptor tables, page-table pools).

use core::cell::UnsafeCell;

/// Interior-mutable static storage; every access goes through a raw pointer
/// and the caller states why it does not race.
#[repr(transparent)]
pub struct RacyCell<T>(UnsafeCell<T>);

// SAFETY: callers of `get` promise exclusive or read-only use; each kernel
// image initialises these statics on one CPU before anything else can run.
unsafe impl<T> Sync for RacyCell<T> {}

impl<T> RacyCell<T> {
    /// Wraps a value.
    pub const fn new(v: T) -> Self {
        RacyCell(UnsafeCell::new(v))
    }

    /// Raw pointer to the contents.
    pub const fn get(&self) -> *mut T {
        self.0.get()
    }
}

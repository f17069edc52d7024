//! The panic handler of the bare-metal staticlib (feature `panic-handler`).
//!
//! A `no_std` staticlib must bring its own handler; a Rust kernel that links
//! `mkipc-sys` as an rlib has one already, so it stays behind a feature. No panic
//! is reachable from the ABI functions (every failure is a status), so this is a
//! last resort: it calls the hook a C kernel installed with
//! `super::mkipc_set_panic_hook`, if any, and then halts this CPU in a spin loop.

use core::sync::atomic::{AtomicPtr, Ordering};

/// The installed hook as a data pointer (null: none).
pub(crate) static PANIC_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Acquire: pairs with the Release store in `mkipc_set_panic_hook`.
    let raw = PANIC_HOOK.load(Ordering::Acquire);
    if !raw.is_null() {
        // SAFETY: only `mkipc_set_panic_hook` stores non-null values, each made
        // from a `MkipcPanicHook`, so transmuting back gives that function.
        let hook = unsafe { core::mem::transmute::<*mut (), super::MkipcPanicHook>(raw) };
        // SAFETY: the kernel installed a callable hook; the message is static.
        unsafe { hook(c"mkipc panicked (a bug in mkipc)".as_ptr()) };
    }
    loop {
        core::hint::spin_loop();
    }
}

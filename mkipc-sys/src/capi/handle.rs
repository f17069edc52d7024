//! Handle storage owned by the caller.
//!
//! A kernel has no allocator, so every handle lives in memory the caller provides:
//! an opaque struct of `u64` words (so 8-byte aligned) of fixed size declared in `mkipc.h`
//! (`mkipc_region`, `mkipc_producer`, ...). Its first word is a magic naming the
//! kind of handle while it is open, and 0 once closed; the rest holds the Rust
//! endpoint. Every call checks the pointer (null, alignment) and the magic, so a
//! never-opened (zeroed), closed or wrong-kind handle is refused with a status.
//!
//! Rules for callers (in `mkipc.h` too): zero-initialise storage before the first
//! open; use a handle from one thread at a time; never copy an open handle's bytes
//! (the copy would share private state); close every handle you opened.

use core::mem::{MaybeUninit, align_of, size_of};

use super::status::{Result, Status};

/// Magic of an open `mkipc_region`.
pub(crate) const REGION: u64 = u64::from_le_bytes(*b"mkREGION");
/// Magic of an open `mkipc_producer`.
pub(crate) const PRODUCER: u64 = u64::from_le_bytes(*b"mkPRODCR");
/// Magic of an open `mkipc_consumer`.
pub(crate) const CONSUMER: u64 = u64::from_le_bytes(*b"mkCONSMR");
/// Magic of an open `mkipc_sender`.
pub(crate) const SENDER: u64 = u64::from_le_bytes(*b"mkSENDER");
/// Magic of an open `mkipc_receiver`.
pub(crate) const RECEIVER: u64 = u64::from_le_bytes(*b"mkRECEIV");
/// Magic of an open `mkipc_node`.
pub(crate) const NODE: u64 = u64::from_le_bytes(*b"mkNODE\0\0");
/// Every kind: opening into storage that holds any open handle is refused.
const KINDS: [u64; 6] = [REGION, PRODUCER, CONSUMER, SENDER, RECEIVER, NODE];

/// The layout inside a handle's storage.
#[repr(C)]
pub(crate) struct Slot<T> {
    magic: u64,
    value: MaybeUninit<T>,
}

/// Whether `T` fits storage `S` (used in compile-time asserts next to each handle).
pub(crate) const fn fits<S, T>() -> bool {
    size_of::<Slot<T>>() <= size_of::<S>() && align_of::<Slot<T>>() <= align_of::<S>()
}

/// Checks the storage pointer itself: non-null, aligned for `S`.
fn checked<S>(storage: *const S) -> Result<()> {
    if storage.is_null() {
        return Err(Status::Null);
    }
    if !storage.addr().is_multiple_of(align_of::<S>()) {
        return Err(Status::BadHandle);
    }
    Ok(())
}

/// Reads the magic word of a handle.
///
/// # Safety
///
/// `storage` is non-null, aligned, and valid for reads of `S`.
unsafe fn magic_of<S>(storage: *const S) -> u64 {
    // SAFETY: by the contract, the first 8 bytes of `S` are readable and aligned
    // (every handle struct is 8-byte aligned and at least one word long). A
    // volatile read: the value is whatever the caller's memory holds.
    unsafe { storage.cast::<u64>().read_volatile() }
}

/// Moves `value` into the caller's storage and marks it open with `magic`.
///
/// # Safety
///
/// `storage` is null or valid for reads and writes of `S`; `fits::<S, T>()`.
pub(crate) unsafe fn open<S, T>(storage: *mut S, magic: u64, value: T) -> Result<()> {
    checked(storage)?;
    debug_assert!(fits::<S, T>());
    // SAFETY: checked non-null and aligned; readable by the contract.
    if KINDS.contains(&unsafe { magic_of(storage) }) {
        return Err(Status::InUse);
    }
    debug_assert!(KINDS.contains(&magic));
    let slot = storage.cast::<Slot<T>>();
    // SAFETY: `Slot<T>` fits `S` in size and alignment (asserted at compile time
    // for every handle kind), so the write stays inside the caller's storage.
    unsafe {
        slot.write(Slot {
            magic,
            value: MaybeUninit::new(value),
        })
    };
    Ok(())
}

/// The open handle of kind `magic` in `storage`, for exclusive use.
///
/// # Safety
///
/// `storage` is null or valid for reads and writes of `S` for `'a`, used by no one
/// else during `'a`, and if its magic is `magic` it was opened with a `T`.
pub(crate) unsafe fn get<'a, S, T>(storage: *mut S, magic: u64) -> Result<&'a mut T> {
    checked(storage)?;
    // SAFETY: checked non-null and aligned; readable by the contract.
    if unsafe { magic_of(storage) } != magic {
        return Err(Status::BadHandle);
    }
    let slot = storage.cast::<Slot<T>>();
    // SAFETY: the magic says `open` wrote a `T` here and `close` has not dropped
    // it; the caller gives us exclusive use for `'a`.
    Ok(unsafe { (*slot).value.assume_init_mut() })
}

/// The open handle of kind `magic` in `storage`, shared.
///
/// # Safety
///
/// As for [`get`], except that others may read the handle during `'a` (but no one
/// writes or closes it).
pub(crate) unsafe fn get_ref<'a, S, T>(storage: *const S, magic: u64) -> Result<&'a T> {
    checked(storage)?;
    // SAFETY: checked non-null and aligned; readable by the contract.
    if unsafe { magic_of(storage) } != magic {
        return Err(Status::BadHandle);
    }
    let slot = storage.cast::<Slot<T>>();
    // SAFETY: the magic says a live `T` is here; shared use only.
    Ok(unsafe { (*slot).value.assume_init_ref() })
}

/// Drops the handle of kind `magic` in `storage` and marks the storage closed.
///
/// # Safety
///
/// As for [`get`].
pub(crate) unsafe fn close<S, T>(storage: *mut S, magic: u64) -> Result<()> {
    // SAFETY: forwarded contract.
    let value: &mut T = unsafe { get(storage, magic)? };
    // SAFETY: `value` is the live `T` from `open`; the magic is cleared right
    // after, so nothing reads it again.
    unsafe { core::ptr::drop_in_place(value) };
    // SAFETY: checked by `get`: non-null, aligned, writable by the contract.
    unsafe { storage.cast::<u64>().write_volatile(0) };
    Ok(())
}

/// Moves the handle of kind `magic` out of `storage` and marks the storage
/// closed (for closes that consume the endpoint).
///
/// # Safety
///
/// As for [`get`].
pub(crate) unsafe fn take<S, T>(storage: *mut S, magic: u64) -> Result<T> {
    // SAFETY: forwarded contract.
    let value: &mut T = unsafe { get(storage, magic)? };
    // SAFETY: `value` is the live `T` from `open`; the magic is cleared right
    // after, so nothing reads or drops it again.
    let value = unsafe { core::ptr::read(value) };
    // SAFETY: checked by `get`: non-null, aligned, writable by the contract.
    unsafe { storage.cast::<u64>().write_volatile(0) };
    Ok(value)
}

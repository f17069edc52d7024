//! SPSC rings: the fast path for small messages (up to one slot each).

use mkipc::spsc::{ConsumeError, Consumer, Geometry, Producer, RingLayout};

use super::handle::{self, CONSUMER, PRODUCER, fits};
use super::hooks::MkipcHooks;
use super::region::{MkipcRegion, region_ref};
use super::status::{Result, Status};
use super::{bytes, bytes_mut, guard, put};

/// Layout flag: slots packed back to back (8-byte aligned) instead of one per
/// 128 bytes; better for streams, worse for round trips. Rings only.
pub const MKIPC_LAYOUT_DENSE: u32 = 1;
/// Layout flag: sections aligned to 128 bytes instead of 4096 (smaller, but a
/// platform cannot map each side's section with its own protection).
pub const MKIPC_LAYOUT_COMPACT: u32 = 2;

/// The producing end of an SPSC ring (opaque; zero-initialise before attaching).
#[repr(C)]
pub struct MkipcProducer {
    opaque: [u64; 32],
}

/// The consuming end of an SPSC ring (opaque; zero-initialise before attaching).
#[repr(C)]
pub struct MkipcConsumer {
    opaque: [u64; 32],
}

struct ProducerHandle {
    producer: Producer,
    hooks: MkipcHooks,
}

struct ConsumerHandle {
    consumer: Consumer,
    hooks: MkipcHooks,
}

const _: () = assert!(fits::<MkipcProducer, ProducerHandle>());
const _: () = assert!(fits::<MkipcConsumer, ConsumerHandle>());

fn geometry(slot_count: u32, slot_size: u32, flags: u32) -> Result<Geometry> {
    if flags & !(MKIPC_LAYOUT_DENSE | MKIPC_LAYOUT_COMPACT) != 0 {
        return Err(Status::InvalidArgument);
    }
    let mut g = Geometry::new(slot_count, slot_size);
    if flags & MKIPC_LAYOUT_DENSE != 0 {
        g = g.dense();
    }
    if flags & MKIPC_LAYOUT_COMPACT != 0 {
        g = g.compact();
    }
    g.ring_size().map_err(|_| Status::InvalidArgument)?;
    Ok(g)
}

/// Stores in `*out_size` the bytes a ring of `slot_count` slots (a power of two)
/// of `slot_size` payload bytes (a multiple of 8) occupies with `flags`
/// (`MKIPC_LAYOUT_*`).
///
/// # Safety
///
/// `out_size` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_ring_size(
    slot_count: u32,
    slot_size: u32,
    flags: u32,
    out_size: *mut usize,
) -> i32 {
    guard(|| {
        if out_size.is_null() {
            return Err(Status::Null);
        }
        let size = geometry(slot_count, slot_size, flags)?
            .ring_size()
            .map_err(|_| Status::InvalidArgument)?;
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_size, size) };
        Ok(())
    })
}

/// Formats a ring at `offset` (a multiple of its section alignment): done once by
/// the region's owner, before either end attaches.
///
/// # Safety
///
/// `region` is null or points to a live `mkipc_region`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_ring_create(
    region: *const MkipcRegion,
    offset: usize,
    slot_count: u32,
    slot_size: u32,
    flags: u32,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        RingLayout::create(region, offset, geometry(slot_count, slot_size, flags)?)?;
        Ok(())
    })
}

/// Attaches the producing end of the ring at `offset`.
///
/// # Safety
///
/// `out` points to writable, zero-initialised (or closed) `mkipc_producer`
/// storage; `region` is null or points to a live `mkipc_region`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_attach(
    out: *mut MkipcProducer,
    region: *const MkipcRegion,
    offset: usize,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        let producer = Producer::attach(region.clone(), offset)?;
        let handle = ProducerHandle {
            producer,
            hooks: MkipcHooks::default(),
        };
        // SAFETY: valid storage by the contract.
        unsafe { handle::open(out, PRODUCER, handle) }
    })
}

/// Attaches the consuming end of the ring at `offset`.
///
/// # Safety
///
/// As for `mkipc_producer_attach`, with `mkipc_consumer` storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_attach(
    out: *mut MkipcConsumer,
    region: *const MkipcRegion,
    offset: usize,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        let consumer = Consumer::attach(region.clone(), offset)?;
        let handle = ConsumerHandle {
            consumer,
            hooks: MkipcHooks::default(),
        };
        // SAFETY: valid storage by the contract.
        unsafe { handle::open(out, CONSUMER, handle) }
    })
}

/// Closes a producer.
///
/// # Safety
///
/// `producer` is null or points to `mkipc_producer` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_close(producer: *mut MkipcProducer) -> i32 {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::close::<_, ProducerHandle>(producer, PRODUCER) })
}

/// Closes a consumer.
///
/// # Safety
///
/// `consumer` is null or points to `mkipc_consumer` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_close(consumer: *mut MkipcConsumer) -> i32 {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::close::<_, ConsumerHandle>(consumer, CONSUMER) })
}

/// # Safety
///
/// `p` is null or points to `mkipc_producer` storage no other thread uses.
unsafe fn producer_of<'a>(p: *mut MkipcProducer) -> Result<&'a mut ProducerHandle> {
    // SAFETY: forwarded contract.
    unsafe { handle::get(p, PRODUCER) }
}

/// # Safety
///
/// `c` is null or points to `mkipc_consumer` storage no other thread uses.
unsafe fn consumer_of<'a>(c: *mut MkipcConsumer) -> Result<&'a mut ConsumerHandle> {
    // SAFETY: forwarded contract.
    unsafe { handle::get(c, CONSUMER) }
}

/// Installs platform hooks on a producer (copied; NULL removes them). The
/// producer rings the doorbell after each message it publishes.
///
/// # Safety
///
/// `producer` as for `mkipc_producer_close`; `hooks` is null or readable, and its
/// functions may be called with its `ctx` until the producer is closed or its
/// hooks are replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_set_hooks(
    producer: *mut MkipcProducer,
    hooks: *const MkipcHooks,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p = unsafe { producer_of(producer)? };
        // SAFETY: forwarded contract.
        p.hooks = unsafe { MkipcHooks::from_ptr(hooks) };
        Ok(())
    })
}

/// Installs platform hooks on a consumer (copied; NULL removes them). The
/// consumer uses the clock and `relax` in `mkipc_consumer_pop_timeout`.
///
/// # Safety
///
/// As for `mkipc_producer_set_hooks`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_set_hooks(
    consumer: *mut MkipcConsumer,
    hooks: *const MkipcHooks,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { consumer_of(consumer)? };
        // SAFETY: forwarded contract.
        c.hooks = unsafe { MkipcHooks::from_ptr(hooks) };
        Ok(())
    })
}

/// Copies `len` bytes from `data` into the next slot and publishes it, waiting up
/// to `timeout_ns` for a free slot (0: no waiting, `MKIPC_STATUS_FULL`).
///
/// # Safety
///
/// `producer` as for `mkipc_producer_close`; `data` is readable for `len` bytes
/// (NULL only when `len` is 0) and not inside a shared region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_push_timeout(
    producer: *mut MkipcProducer,
    data: *const u8,
    len: usize,
    timeout_ns: u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p = unsafe { producer_of(producer)? };
        // SAFETY: forwarded contract.
        let msg = unsafe { bytes(data, len)? };
        let hooks = p.hooks;
        hooks.poll(
            timeout_ns,
            |s| s == Status::Full,
            || Ok(p.producer.push(msg)?),
        )?;
        hooks.ring();
        Ok(())
    })
}

/// `mkipc_producer_push_timeout` without waiting.
///
/// # Safety
///
/// As for `mkipc_producer_push_timeout`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_push(
    producer: *mut MkipcProducer,
    data: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { mkipc_producer_push_timeout(producer, data, len, 0) }
}

/// Stores the payload capacity of one slot in `*out_size`: the longest message.
///
/// # Safety
///
/// `producer` as for `mkipc_producer_close`; `out_size` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_slot_size(
    producer: *mut MkipcProducer,
    out_size: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p = unsafe { producer_of(producer)? };
        if out_size.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_size, p.producer.slot_size()) };
        Ok(())
    })
}

/// Copies the next message into `buf` (`cap` bytes), stores its length in
/// `*out_len` and releases its slot, waiting up to `timeout_ns` for one (0: no
/// waiting, `MKIPC_STATUS_EMPTY`). A message longer than `cap` stays queued:
/// `MKIPC_STATUS_BUFFER_TOO_SMALL` with the needed length in `*out_len`.
///
/// # Safety
///
/// `consumer` as for `mkipc_consumer_close`; `buf` is writable for `cap` bytes
/// (NULL only when `cap` is 0) and not inside a shared region; `out_len` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_pop_timeout(
    consumer: *mut MkipcConsumer,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    timeout_ns: u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { consumer_of(consumer)? };
        if out_len.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let dst = unsafe { bytes_mut(buf, cap)? };
        let hooks = c.hooks;
        let popped = hooks.poll(
            timeout_ns,
            |s| s == Status::Empty,
            || match c.consumer.pop(dst) {
                Err(ConsumeError::BufferTooSmall { needed }) => Ok(Err(needed)),
                other => Ok(Ok(other?)),
            },
        )?;
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_len, popped.unwrap_or_else(|needed| needed)) };
        popped.map(drop).map_err(|_| Status::BufferTooSmall)
    })
}

/// `mkipc_consumer_pop_timeout` without waiting.
///
/// # Safety
///
/// As for `mkipc_consumer_pop_timeout`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_pop(
    consumer: *mut MkipcConsumer,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { mkipc_consumer_pop_timeout(consumer, buf, cap, out_len, 0) }
}

/// Stores in `*out_count` how many protocol faults the producer has detected in
/// the consumer's words (non-zero means it is latched broken).
///
/// # Safety
///
/// `producer` as for `mkipc_producer_close`; `out_count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_producer_fault_count(
    producer: *mut MkipcProducer,
    out_count: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let p = unsafe { producer_of(producer)? };
        if out_count.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_count, p.producer.fault_count()) };
        Ok(())
    })
}

/// Stores in `*out_count` how many protocol faults the consumer has detected in
/// the producer's words (non-zero means it is latched broken).
///
/// # Safety
///
/// `consumer` as for `mkipc_consumer_close`; `out_count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_consumer_fault_count(
    consumer: *mut MkipcConsumer,
    out_count: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { consumer_of(consumer)? };
        if out_count.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_count, c.consumer.fault_count()) };
        Ok(())
    })
}

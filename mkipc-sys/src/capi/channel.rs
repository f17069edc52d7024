//! Byte channels over the buffer pool: messages of any length up to the pool's
//! capacity, copied in and out, or written and read in place (loans, held
//! buffers). Speaks the same wire format as `mkipc::typed::ByteSender` and
//! `ByteReceiver`.

use mkipc::Region;
use mkipc::doorbell::Notifier;
use mkipc::pool::{PoolGeometry, RecvError};
use mkipc::spsc::RingLayout;
use mkipc::typed::{ByteReceiver, ByteSender, create_bytes};

use super::handle::{self, RECEIVER, SENDER, fits};
use super::hooks::{HookBell, MkipcHooks, WakeSide};
use super::region::{MkipcRegion, region_ref};
use super::ring::MKIPC_LAYOUT_COMPACT;
use super::status::{Result, Status};
use super::{bytes, bytes_mut, guard, put};

/// The sending end of a byte channel (opaque; zero-initialise before attaching).
#[repr(C)]
pub struct MkipcSender {
    opaque: [u64; 160],
}

/// The receiving end of a byte channel (opaque; zero-initialise before attaching).
#[repr(C)]
pub struct MkipcReceiver {
    opaque: [u64; 160],
}

/// A pool buffer loaned to the sender for writing in place.
///
/// Write it with `mkipc_sender_loan_write` (or, in a kernel that mapped the region
/// itself, at `region base + region_offset`, `capacity` bytes), then hand it over
/// with `mkipc_sender_send_loan` or give it back with `mkipc_sender_cancel`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MkipcLoan {
    /// Index of the buffer in the pool.
    pub index: u32,
    /// Bytes the buffer holds.
    pub capacity: u32,
    /// Offset of the buffer from the start of the region.
    pub region_offset: u64,
}

/// A received buffer the receiver holds in place until it releases it.
///
/// Read it with `mkipc_receiver_read`. The sender can still write the memory if
/// it breaks the protocol: for untrusted data copy out first, then validate the
/// copy. Release it with `mkipc_receiver_release`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MkipcHeld {
    /// Index of the buffer in the pool.
    pub index: u32,
    /// Length of the message in the buffer.
    pub len: u32,
    /// Offset of the buffer from the start of the region.
    pub region_offset: u64,
}

struct SenderHandle {
    sender: ByteSender,
    /// Rings the receiver through the need-wakeup word of the submission ring.
    notifier: Notifier<HookBell>,
    hooks: MkipcHooks,
}

struct ReceiverHandle {
    receiver: ByteReceiver,
    /// The receiver's need-wakeup side of the submission ring.
    wake: WakeSide,
    hooks: MkipcHooks,
}

/// The ring that carries the channel's messages (its need-wakeup word and
/// futex word are the channel's doorbell).
fn submit_ring(region: &Region, pool: &mkipc::pool::PoolLayout) -> Result<RingLayout> {
    Ok(RingLayout::read(region, pool.submit_ring())?)
}

const _: () = assert!(fits::<MkipcSender, SenderHandle>());
const _: () = assert!(fits::<MkipcReceiver, ReceiverHandle>());

fn geometry(buffer_count: u32, buffer_size: u32, flags: u32) -> Result<PoolGeometry> {
    if flags & !MKIPC_LAYOUT_COMPACT != 0 {
        return Err(Status::InvalidArgument);
    }
    let mut g = PoolGeometry::new(buffer_count, buffer_size);
    if flags & MKIPC_LAYOUT_COMPACT != 0 {
        g = g.compact();
    }
    g.pool_size().map_err(|_| Status::InvalidArgument)?;
    Ok(g)
}

/// Stores in `*out_size` the bytes a byte channel of `buffer_count` buffers
/// (1 to 1024) of `buffer_size` bytes (a multiple of 8) occupies with `flags`
/// (`MKIPC_LAYOUT_COMPACT` or 0). Messages up to 48 bytes travel inline; longer
/// ones take `ceil(len / buffer_size)` buffers (at most 64).
///
/// # Safety
///
/// `out_size` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_channel_size(
    buffer_count: u32,
    buffer_size: u32,
    flags: u32,
    out_size: *mut usize,
) -> i32 {
    guard(|| {
        if out_size.is_null() {
            return Err(Status::Null);
        }
        let size = geometry(buffer_count, buffer_size, flags)?
            .pool_size()
            .map_err(|_| Status::InvalidArgument)?;
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_size, size) };
        Ok(())
    })
}

/// Formats a byte channel at `offset` (a multiple of its section alignment):
/// done once by the region's owner, before either end attaches.
///
/// # Safety
///
/// `region` is null or points to a live `mkipc_region`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_channel_create(
    region: *const MkipcRegion,
    offset: usize,
    buffer_count: u32,
    buffer_size: u32,
    flags: u32,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        create_bytes(region, offset, geometry(buffer_count, buffer_size, flags)?)?;
        Ok(())
    })
}

/// Attaches the sending end of the byte channel at `offset`.
///
/// # Safety
///
/// `out` points to writable, zero-initialised (or closed) `mkipc_sender`
/// storage; `region` is null or points to a live `mkipc_region`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_attach(
    out: *mut MkipcSender,
    region: *const MkipcRegion,
    offset: usize,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        let mut sender = ByteSender::attach(region.clone(), offset)?;
        let ring = submit_ring(region, sender.pool().layout())?;
        let notifier = Notifier::new(
            region.clone(),
            ring.need_wakeup_word(),
            HookBell::new(region, &ring),
        )?;
        let handle = SenderHandle {
            sender,
            notifier,
            hooks: MkipcHooks::default(),
        };
        // SAFETY: valid storage by the contract.
        unsafe { handle::open(out, SENDER, handle) }
    })
}

/// Attaches the receiving end of the byte channel at `offset`.
///
/// # Safety
///
/// As for `mkipc_sender_attach`, with `mkipc_receiver` storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_attach(
    out: *mut MkipcReceiver,
    region: *const MkipcRegion,
    offset: usize,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let region = unsafe { region_ref(region)? };
        let mut receiver = ByteReceiver::attach(region.clone(), offset)?;
        let ring = submit_ring(region, receiver.pool().layout())?;
        let handle = ReceiverHandle {
            wake: WakeSide::new(region, &ring)?,
            receiver,
            hooks: MkipcHooks::default(),
        };
        // SAFETY: valid storage by the contract.
        unsafe { handle::open(out, RECEIVER, handle) }
    })
}

/// Closes a sender. Buffers it loaned and did not send are simply forgotten.
///
/// # Safety
///
/// `sender` is null or points to `mkipc_sender` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_close(sender: *mut MkipcSender) -> i32 {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::close::<_, SenderHandle>(sender, SENDER) })
}

/// Closes a receiver. Buffers it holds are not returned (release them first).
///
/// # Safety
///
/// `receiver` is null or points to `mkipc_receiver` storage no other thread uses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_close(receiver: *mut MkipcReceiver) -> i32 {
    // SAFETY: forwarded contract.
    guard(|| unsafe { handle::close::<_, ReceiverHandle>(receiver, RECEIVER) })
}

/// # Safety
///
/// `s` is null or points to `mkipc_sender` storage no other thread uses.
unsafe fn sender_of<'a>(s: *mut MkipcSender) -> Result<&'a mut SenderHandle> {
    // SAFETY: forwarded contract.
    unsafe { handle::get(s, SENDER) }
}

/// # Safety
///
/// `r` is null or points to `mkipc_receiver` storage no other thread uses.
unsafe fn receiver_of<'a>(r: *mut MkipcReceiver) -> Result<&'a mut ReceiverHandle> {
    // SAFETY: forwarded contract.
    unsafe { handle::get(r, RECEIVER) }
}

/// Reads a caller's loan or held record.
///
/// # Safety
///
/// `p` is null or readable.
unsafe fn record<T: Copy>(p: *const T) -> Result<T> {
    if p.is_null() {
        return Err(Status::Null);
    }
    // SAFETY: non-null and readable by the contract; plain integers only.
    Ok(unsafe { p.read() })
}

/// Installs platform hooks on a sender (copied; NULL removes them). After each
/// message it sends, the sender rings the doorbell when the receiver announced a
/// sleep (once per announced sleep).
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `hooks` is null or readable, and its
/// functions may be called with its `ctx` until the sender is closed or its hooks
/// are replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_set_hooks(
    sender: *mut MkipcSender,
    hooks: *const MkipcHooks,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        // SAFETY: forwarded contract.
        s.hooks = unsafe { MkipcHooks::from_ptr(hooks) };
        s.notifier.doorbell().set(s.hooks);
        Ok(())
    })
}

/// Installs platform hooks on a receiver (copied; NULL removes them). The
/// receiver rings the doorbell after it returned buffers to the sender, and
/// sleeps in `wait_prepare`/`wait` in `mkipc_receiver_recv_timeout`.
///
/// # Safety
///
/// As for `mkipc_sender_set_hooks`, with a receiver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_set_hooks(
    receiver: *mut MkipcReceiver,
    hooks: *const MkipcHooks,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let r = unsafe { receiver_of(receiver)? };
        // SAFETY: forwarded contract.
        r.hooks = unsafe { MkipcHooks::from_ptr(hooks) };
        Ok(())
    })
}

/// Stores in `*out_size` the longest message the channel carries.
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `out_size` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_max_message_size(
    sender: *mut MkipcSender,
    out_size: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        if out_size.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_size, s.sender.max_message_size()) };
        Ok(())
    })
}

/// Sends a copy of `len` bytes from `data` (inline when short, else through pool
/// buffers, all or nothing), waiting up to `timeout_ns` while the ring is full or
/// every buffer is in use (0: no waiting).
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `data` is readable for `len` bytes (NULL
/// only when `len` is 0) and not inside a shared region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_send_timeout(
    sender: *mut MkipcSender,
    data: *const u8,
    len: usize,
    timeout_ns: u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        // SAFETY: forwarded contract.
        let msg = unsafe { bytes(data, len)? };
        let hooks = s.hooks;
        let retry = |st| st == Status::Full || st == Status::NoBuffer;
        hooks.poll(timeout_ns, retry, || Ok(s.sender.send_bytes(msg)?))?;
        // Infallible: a failed ring only leaves the receiver to its timeout.
        let _ = s.notifier.notify();
        Ok(())
    })
}

/// `mkipc_sender_send_timeout` without waiting.
///
/// # Safety
///
/// As for `mkipc_sender_send_timeout`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_send(
    sender: *mut MkipcSender,
    data: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { mkipc_sender_send_timeout(sender, data, len, 0) }
}

/// Loans a free buffer for writing in place (collecting returned buffers when
/// none is free) and describes it in `*out_loan`.
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `out_loan` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_loan(
    sender: *mut MkipcSender,
    out_loan: *mut MkipcLoan,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        if out_loan.is_null() {
            return Err(Status::Null);
        }
        let pool = s.sender.pool();
        let loan = pool.loan()?;
        let described = MkipcLoan {
            index: loan.index() as u32,
            capacity: pool.buffer_size() as u32,
            region_offset: pool.layout().buffer(loan.index()) as u64,
        };
        // The ledger records the loan; `loan_at` rebuilds the token from the index.
        drop(loan);
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_loan, described) };
        Ok(())
    })
}

/// Copies `len` bytes from `data` into the loaned buffer at `offset`.
/// `MKIPC_STATUS_TOO_LARGE` when the range exceeds the buffer,
/// `MKIPC_STATUS_FOREIGN` when the loan is not outstanding on this sender.
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `loan` is readable; `data` is readable
/// for `len` bytes (NULL only when `len` is 0) and not inside a shared region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_loan_write(
    sender: *mut MkipcSender,
    loan: *const MkipcLoan,
    offset: usize,
    data: *const u8,
    len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        // SAFETY: forwarded contract.
        let loan = unsafe { record(loan)? };
        // SAFETY: forwarded contract.
        let src = unsafe { bytes(data, len)? };
        let pool = s.sender.pool();
        let token = pool.loan_at(loan.index as usize).ok_or(Status::Foreign)?;
        let written = pool.writer(&token).write_at(offset, src);
        drop(token);
        Ok(written?)
    })
}

/// Hands the first `len` bytes of a loaned buffer to the receiver. On success
/// the loan is spent; on failure it stays the caller's (retry or cancel it).
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `loan` is readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_send_loan(
    sender: *mut MkipcSender,
    loan: *const MkipcLoan,
    len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        // SAFETY: forwarded contract.
        let loan = unsafe { record(loan)? };
        let pool = s.sender.pool();
        let token = pool.loan_at(loan.index as usize).ok_or(Status::Foreign)?;
        // A failed send hands the token back; the ledger keeps the buffer loaned.
        pool.send(token, len)
            .map_err(|failed| Status::from(failed.error))?;
        // Infallible: a failed ring only leaves the receiver to its timeout.
        let _ = s.notifier.notify();
        Ok(())
    })
}

/// Gives an unsent loan back to the free buffers.
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `loan` is readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_cancel(
    sender: *mut MkipcSender,
    loan: *const MkipcLoan,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        // SAFETY: forwarded contract.
        let loan = unsafe { record(loan)? };
        let pool = s.sender.pool();
        let token = pool.loan_at(loan.index as usize).ok_or(Status::Foreign)?;
        Ok(pool.cancel(token)?)
    })
}

/// Takes back every buffer the receiver returned and stores how many in
/// `*out_count` (may be NULL). Loans and sends collect on their own when they
/// run out; this is for callers that watch `lent` buffers.
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `out_count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_collect(
    sender: *mut MkipcSender,
    out_count: *mut usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        let n = s.sender.pool().collect()?;
        // SAFETY: null or writable by the contract.
        unsafe { put(out_count, n) };
        Ok(())
    })
}

/// Stores in `*out_count` how many protocol faults the sender has detected in
/// the receiver's words (non-zero means it is latched broken).
///
/// # Safety
///
/// `sender` as for `mkipc_sender_close`; `out_count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_sender_fault_count(
    sender: *mut MkipcSender,
    out_count: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let s = unsafe { sender_of(sender)? };
        if out_count.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_count, s.sender.pool().fault_count()) };
        Ok(())
    })
}

/// Copies the next message into `buf` (`cap` bytes), stores its length in
/// `*out_len` and returns its buffers to the sender, waiting up to `timeout_ns`
/// for one (0: no waiting, `MKIPC_STATUS_EMPTY`). A message longer than `cap`
/// stays queued: `MKIPC_STATUS_BUFFER_TOO_SMALL` with the needed length in
/// `*out_len`. While waiting it spins for a bounded budget, then sleeps in the
/// `wait` hook (or the futex fallback) after announcing it, so senders ring only
/// then.
///
/// # Safety
///
/// `receiver` as for `mkipc_receiver_close`; `buf` is writable for `cap` bytes
/// (NULL only when `cap` is 0) and not inside a shared region; `out_len` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_recv_timeout(
    receiver: *mut MkipcReceiver,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
    timeout_ns: u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let r = unsafe { receiver_of(receiver)? };
        if out_len.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: forwarded contract.
        let dst = unsafe { bytes_mut(buf, cap)? };
        let hooks = r.hooks;
        let inline = r.receiver.pool().layout().geometry().inline_size as usize;
        let ReceiverHandle { receiver, wake, .. } = r;
        let received = hooks.wait_for(wake, timeout_ns, || match receiver.recv_bytes(dst) {
            Err(RecvError::BufferTooSmall { needed }) => Ok(Err(needed)),
            other => Ok(Ok(other?)),
        })?;
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_len, received.unwrap_or_else(|needed| needed)) };
        let len = received.map_err(|_| Status::BufferTooSmall)?;
        if len > inline {
            // The message came through pool buffers, now returned.
            hooks.ring();
        }
        Ok(())
    })
}

/// `mkipc_receiver_recv_timeout` without waiting.
///
/// # Safety
///
/// As for `mkipc_receiver_recv_timeout`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_recv(
    receiver: *mut MkipcReceiver,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { mkipc_receiver_recv_timeout(receiver, buf, cap, out_len, 0) }
}

/// Receives the next message without copying it, when it lies in one pool
/// buffer (sent with `mkipc_sender_send_loan`, or longer than 48 bytes and at
/// most one buffer), and describes the held buffer in `*out_held`. Inline and
/// multi-buffer messages stay queued: `MKIPC_STATUS_NEEDS_COPY`.
///
/// # Safety
///
/// `receiver` as for `mkipc_receiver_close`; `out_held` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_hold(
    receiver: *mut MkipcReceiver,
    out_held: *mut MkipcHeld,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let r = unsafe { receiver_of(receiver)? };
        if out_held.is_null() {
            return Err(Status::Null);
        }
        let pool = r.receiver.pool();
        let held = pool.recv()?;
        let described = MkipcHeld {
            index: held.index() as u32,
            len: held.len() as u32,
            region_offset: pool.layout().buffer(held.index()) as u64,
        };
        // The receiver records the buffer as held; `held_at` rebuilds the token.
        drop(held);
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_held, described) };
        Ok(())
    })
}

/// Copies `len` bytes at `offset` of a held message into `dst`
/// (`MKIPC_STATUS_INVALID_ARGUMENT` when the range exceeds the message,
/// `MKIPC_STATUS_FOREIGN` when the buffer is not held by this receiver).
///
/// # Safety
///
/// `receiver` as for `mkipc_receiver_close`; `held` is readable; `dst` is
/// writable for `len` bytes (NULL only when `len` is 0) and not inside a shared
/// region.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_read(
    receiver: *mut MkipcReceiver,
    held: *const MkipcHeld,
    offset: usize,
    dst: *mut u8,
    len: usize,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let r = unsafe { receiver_of(receiver)? };
        // SAFETY: forwarded contract.
        let held = unsafe { record(held)? };
        // SAFETY: forwarded contract.
        let dst = unsafe { bytes_mut(dst, len)? };
        if offset.saturating_add(len) > held.len as usize {
            return Err(Status::InvalidArgument);
        }
        let pool = r.receiver.pool();
        let token = pool
            .held_at(held.index as usize, held.len as usize)
            .ok_or(Status::Foreign)?;
        let read = pool.view(&token).read(offset, dst);
        drop(token);
        Ok(read?)
    })
}

/// Returns a held buffer to the sender (and rings the doorbell).
///
/// # Safety
///
/// `receiver` as for `mkipc_receiver_close`; `held` is readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_release(
    receiver: *mut MkipcReceiver,
    held: *const MkipcHeld,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let r = unsafe { receiver_of(receiver)? };
        // SAFETY: forwarded contract.
        let held = unsafe { record(held)? };
        let pool = r.receiver.pool();
        let token = pool
            .held_at(held.index as usize, held.len as usize)
            .ok_or(Status::Foreign)?;
        pool.give_back(token)?;
        r.hooks.ring();
        Ok(())
    })
}

/// Stores in `*out_count` how many protocol faults the receiver has detected in
/// the sender's words (non-zero means it is latched broken).
///
/// # Safety
///
/// `receiver` as for `mkipc_receiver_close`; `out_count` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkipc_receiver_fault_count(
    receiver: *mut MkipcReceiver,
    out_count: *mut u64,
) -> i32 {
    guard(|| {
        // SAFETY: forwarded contract.
        let r = unsafe { receiver_of(receiver)? };
        if out_count.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable by the contract.
        unsafe { put(out_count, r.receiver.pool().fault_count()) };
        Ok(())
    })
}

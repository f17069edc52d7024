//! The receiving end: validates every submission, reads buffers in place or copies
//! them out, and returns them through the completion ring.

use core::fmt;

use zerocopy::FromBytes;

use super::layout::{MAX_FRAGMENTS, PoolError, PoolLayout, RECORD};
use super::ledger::BitSet;
use crate::fault::{Fault, FaultLatch};
use crate::layout::{POOL_RECORD_INLINE, POOL_RECORD_MORE, PoolRecord};
use crate::shm::{Region, WORD};
use crate::spsc::{ConsumeError, Consumer, ProduceError, Producer, ReadBatch, SlotView};
use crate::sync::Ordering;

/// Why the receiver could not receive or return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// No complete message is waiting.
    Empty,
    /// The next message is inline or spans several buffers: take it with
    /// [`PoolReceiver::recv_bytes`] (it stays queued).
    NeedsCopy,
    /// The caller's buffer is shorter than the message (which stays queued).
    BufferTooSmall {
        /// Length of the message.
        needed: usize,
    },
    /// The handle was not given out by this receiver.
    ForeignHandle,
    /// The sender broke the protocol; the receiver is latched broken.
    Broken(Fault),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => write!(f, "no complete message is waiting"),
            RecvError::NeedsCopy => write!(
                f,
                "the next message is inline or fragmented; receive it with recv_bytes"
            ),
            RecvError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: the message has {needed} bytes")
            }
            RecvError::ForeignHandle => {
                write!(f, "this buffer handle was not given out by this receiver")
            }
            RecvError::Broken(fault) => write!(f, "pool is broken: {fault}"),
        }
    }
}

impl core::error::Error for RecvError {}

/// A received buffer, the receiver's until [`PoolReceiver::give_back`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a held buffer stays out of the sender's pool until given back"]
pub struct Held {
    pool: usize,
    index: usize,
    len: usize,
}

impl Held {
    /// Length of the message in the buffer.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of the buffer in the pool.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// One validated pooled fragment.
#[derive(Debug, Clone, Copy, Default)]
struct Fragment {
    index: usize,
    len: usize,
}

/// The single receiver of a buffer pool.
#[derive(Debug)]
pub struct PoolReceiver {
    region: Region,
    layout: PoolLayout,
    submit: Consumer,
    completions: Producer,
    held: BitSet,
    faults: FaultLatch,
}

impl PoolReceiver {
    /// Attaches to the pool at `offset`.
    pub fn attach(region: Region, offset: usize) -> Result<PoolReceiver, PoolError> {
        let layout = PoolLayout::read(&region, offset)?;
        let submit = Consumer::attach(region.clone(), layout.submit_ring())?;
        let completions = Producer::attach(region.clone(), layout.completion_ring())?;
        Ok(PoolReceiver {
            region,
            layout,
            submit,
            completions,
            held: BitSet::empty(),
            faults: FaultLatch::default(),
        })
    }

    /// The pool's layout.
    pub fn layout(&self) -> &PoolLayout {
        &self.layout
    }

    /// Largest message the pool carries.
    pub fn max_message_size(&self) -> usize {
        self.layout.max_message_size()
    }

    /// Buffers held (received and not yet given back).
    pub fn held_buffers(&self) -> usize {
        self.held.len()
    }

    /// The latched fault, if the sender broke the protocol.
    pub fn fault(&self) -> Option<Fault> {
        self.faults.get()
    }

    /// Number of faults detected.
    pub fn fault_count(&self) -> u64 {
        self.faults.count()
    }

    /// Receives the next single-buffer message without copying it.
    ///
    /// Read it through [`PoolReceiver::view`] while you hold it, then
    /// [`PoolReceiver::give_back`]. The sender can still write the memory if it
    /// breaks the protocol: for untrusted data, copy out first and validate the copy.
    pub fn recv(&mut self) -> Result<Held, RecvError> {
        self.check()?;
        let position = self.submit.released();
        let outcome = match self.submit.peek(1) {
            Err(e) => Err(e),
            Ok(mut batch) => {
                let scanned = read_record(&mut batch, 0, position).and_then(|(r, slot_len)| {
                    let flags = r.flags.get();
                    if flags & (POOL_RECORD_INLINE | POOL_RECORD_MORE) != 0 {
                        return Ok(None);
                    }
                    pooled(&self.layout, &self.held, &r, slot_len, position).map(Some)
                });
                match scanned {
                    Ok(Some(fragment)) => {
                        batch.release(1);
                        Ok(Ok(Some(fragment)))
                    }
                    other => Ok(other),
                }
            }
        };
        match self.settle(outcome)? {
            Some(fragment) => {
                self.held.insert(fragment.index);
                Ok(Held {
                    pool: self.layout.offset(),
                    index: fragment.index,
                    len: fragment.len,
                })
            }
            None => Err(RecvError::NeedsCopy),
        }
    }

    /// The handle of held buffer `index` carrying `len` bytes, if this receiver
    /// holds that buffer and `len` fits it.
    ///
    /// For bindings that hand out buffer indices instead of [`Held`] tokens (the C
    /// ABI). A second handle for one buffer is refused by
    /// [`PoolReceiver::give_back`] once the first was given back.
    pub fn held_at(&self, index: usize, len: usize) -> Option<Held> {
        let held = index < self.layout.buffer_count()
            && self.held.contains(index)
            && len <= self.layout.buffer_size();
        held.then_some(Held {
            pool: self.layout.offset(),
            index,
            len,
        })
    }

    /// A read-only view of a held buffer, reading through [`Region`].
    pub fn view(&self, held: &Held) -> BufferView<'_> {
        BufferView {
            region: &self.region,
            at: self.layout.buffer(held.index),
            len: held.len,
        }
    }

    /// Returns a held buffer to the sender.
    pub fn give_back(&mut self, held: Held) -> Result<(), RecvError> {
        self.check()?;
        if held.pool != self.layout.offset() || !self.held.contains(held.index) {
            return Err(RecvError::ForeignHandle);
        }
        self.return_buffer(held.index)
    }

    /// Copies the next message (inline, one buffer or several) into `dst`, returns
    /// its buffers to the sender, and returns its length.
    pub fn recv_bytes(&mut self, dst: &mut [u8]) -> Result<usize, RecvError> {
        self.check()?;
        let position = self.submit.released();
        let mut fragments = [Fragment::default(); MAX_FRAGMENTS];
        let limit = MAX_FRAGMENTS
            .min(self.layout.buffer_count())
            .min(self.layout.geometry().ring_slots as usize);
        let outcome = match self.submit.peek(limit) {
            Err(e) => Err(e),
            Ok(mut batch) => {
                let copied = copy_message(
                    &self.region,
                    &self.layout,
                    &self.held,
                    &mut batch,
                    position,
                    limit,
                    &mut fragments,
                    dst,
                );
                if let Ok((_, _, slots)) = copied {
                    batch.release(slots);
                }
                Ok(copied)
            }
        };
        let (len, count, _) = self.settle(outcome)?;
        for fragment in &fragments[..count] {
            self.return_buffer(fragment.index)?;
        }
        Ok(len)
    }

    /// Latches a fault found by a layer above (a typed channel's length check).
    pub(crate) fn fail(&mut self, fault: Fault) -> RecvError {
        RecvError::Broken(self.raise(fault))
    }

    /// Position of the next submission record.
    pub(crate) fn position(&self) -> u64 {
        self.submit.released()
    }

    fn return_buffer(&mut self, index: usize) -> Result<(), RecvError> {
        let offset = (index * self.layout.buffer_size()) as u64;
        match self.completions.push(&offset.to_le_bytes()) {
            Ok(()) => {
                self.held.remove(index);
                Ok(())
            }
            Err(ProduceError::Full) => {
                Err(RecvError::Broken(self.raise(Fault::ReturnsNotCollected)))
            }
            Err(ProduceError::Broken(f)) => Err(RecvError::Broken(self.raise(f))),
            Err(ProduceError::TooLarge { .. }) => {
                Err(RecvError::Broken(self.raise(Fault::OutOfBounds)))
            }
        }
    }

    /// Maps a scan's outcome to the caller's result, latching faults.
    fn settle<T>(
        &mut self,
        outcome: Result<Result<T, Scan>, ConsumeError>,
    ) -> Result<T, RecvError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Scan::Incomplete)) | Err(ConsumeError::Empty) => Err(RecvError::Empty),
            Ok(Err(Scan::TooSmall(needed))) | Err(ConsumeError::BufferTooSmall { needed }) => {
                Err(RecvError::BufferTooSmall { needed })
            }
            Ok(Err(Scan::Fault(f))) | Err(ConsumeError::Broken(f)) => {
                Err(RecvError::Broken(self.raise(f)))
            }
        }
    }

    fn check(&self) -> Result<(), RecvError> {
        match self.faults.get() {
            Some(f) => Err(RecvError::Broken(f)),
            None => Ok(()),
        }
    }

    fn raise(&mut self, fault: Fault) -> Fault {
        let fault = self.faults.raise(fault);
        // Relaxed: a statistic for observers, in the receiver's own section (the
        // submission ring's consumer words); nothing is ordered by it.
        let word = self.submit.layout().consumer_faults_word();
        let total = self.faults.count() + self.submit.fault_count();
        let _ = self.region.store(word, total, Ordering::Relaxed);
        fault
    }
}

/// What a scan of the submission ring found besides a message.
enum Scan {
    /// The message's later fragments are not published yet.
    Incomplete,
    /// The caller's buffer is too small for the message.
    TooSmall(usize),
    /// The sender broke the protocol.
    Fault(Fault),
}

impl From<Fault> for Scan {
    fn from(f: Fault) -> Self {
        Scan::Fault(f)
    }
}

fn consume_fault(e: ConsumeError) -> Fault {
    match e {
        ConsumeError::Broken(f) => f,
        _ => Fault::OutOfBounds,
    }
}

/// Reads record `k` of `batch` once: the record and its slot's length.
fn read_record(
    batch: &mut ReadBatch<'_>,
    k: usize,
    base: u64,
) -> Result<(PoolRecord, usize), Scan> {
    let view = batch.get(k).map_err(consume_fault)?;
    record_of(&view, base + k as u64)
}

/// Reads the record at the front of a slot once: the record and the slot's length.
fn record_of(view: &SlotView<'_>, position: u64) -> Result<(PoolRecord, usize), Scan> {
    let slot_len = view.len();
    if slot_len < RECORD {
        return Err(Scan::Fault(Fault::BadRecord {
            position,
            reason: "slot shorter than a pool record",
        }));
    }
    let mut bytes = [0u8; RECORD];
    view.read(0, &mut bytes).map_err(consume_fault)?;
    let record = PoolRecord::read_from_bytes(&bytes).map_err(|_| Fault::OutOfBounds)?;
    Ok((record, slot_len))
}

/// Validates a pooled (non-inline) record against the pool geometry and what the
/// receiver holds.
fn pooled(
    layout: &PoolLayout,
    held: &BitSet,
    r: &PoolRecord,
    slot_len: usize,
    position: u64,
) -> Result<Fragment, Scan> {
    let bad = |reason| Scan::Fault(Fault::BadRecord { position, reason });
    if r.flags.get() & !POOL_RECORD_MORE != 0 {
        return Err(bad("unknown flags on a pooled record"));
    }
    if slot_len != RECORD {
        return Err(bad("a pooled record carries no inline bytes"));
    }
    let offset = r.offset.get();
    let index = layout
        .index_of(offset)
        .ok_or(Fault::BadBufferOffset { offset })?;
    let len = r.len.get() as usize;
    let capacity = layout.buffer_size();
    if len > capacity {
        return Err(Scan::Fault(Fault::BadLength {
            position,
            found: len as u64,
            capacity: capacity as u64,
        }));
    }
    if held.contains(index) {
        return Err(Scan::Fault(Fault::AlreadyHeld { offset }));
    }
    Ok(Fragment { index, len })
}

/// Scans one whole message from `batch`, copies it into `dst` and releases its
/// `(length, pooled fragments to return, ring slots to release)`.
#[allow(clippy::too_many_arguments)]
fn copy_message(
    region: &Region,
    layout: &PoolLayout,
    held: &BitSet,
    batch: &mut ReadBatch<'_>,
    base: u64,
    limit: usize,
    fragments: &mut [Fragment; MAX_FRAGMENTS],
    dst: &mut [u8],
) -> Result<(usize, usize, usize), Scan> {
    let (first, slot_len) = {
        let view = batch.get(0).map_err(consume_fault)?;
        let (first, slot_len) = record_of(&view, base)?;
        if first.flags.get() & POOL_RECORD_INLINE != 0 {
            let len = first.len.get() as usize;
            if first.flags.get() != POOL_RECORD_INLINE
                || len > layout.geometry().inline_size as usize
                || slot_len != RECORD + len
            {
                return Err(Scan::Fault(Fault::BadRecord {
                    position: base,
                    reason: "inline record with bad flags or a length its slot disagrees with",
                }));
            }
            let out = dst.get_mut(..len).ok_or(Scan::TooSmall(len))?;
            view.read(RECORD, out).map_err(consume_fault)?;
            return Ok((len, 0, 1));
        }
        (first, slot_len)
    };
    let mut chain = BitSet::empty();
    let mut total = 0usize;
    let mut record = first;
    let mut slot_len = slot_len;
    let mut k = 0;
    loop {
        let position = base + k as u64;
        let mut fragment = pooled(layout, held, &record, slot_len, position)?;
        if chain.contains(fragment.index) {
            return Err(Scan::Fault(Fault::AlreadyHeld {
                offset: record.offset.get(),
            }));
        }
        chain.insert(fragment.index);
        let more = record.flags.get() & POOL_RECORD_MORE != 0;
        if more && fragment.len != layout.buffer_size() {
            return Err(Scan::Fault(Fault::BadRecord {
                position,
                reason: "a fragment before the last must fill its buffer",
            }));
        }
        fragment.len = fragment.len.min(layout.buffer_size());
        fragments[k] = fragment;
        total += fragment.len;
        k += 1;
        if !more {
            break;
        }
        if k == limit {
            return Err(Scan::Fault(Fault::BadRecord {
                position,
                reason: "fragment chain longer than the pool allows",
            }));
        }
        if k == batch.len() {
            return Err(Scan::Incomplete);
        }
        (record, slot_len) = read_record(batch, k, base)?;
    }
    if total > dst.len() {
        return Err(Scan::TooSmall(total));
    }
    let mut at = 0;
    for fragment in &fragments[..k] {
        region
            .copy_out(
                layout.buffer(fragment.index),
                &mut dst[at..at + fragment.len],
            )
            .map_err(Fault::from)?;
        at += fragment.len;
    }
    Ok((total, k, k))
}

/// Read-only access to a held buffer, through [`Region`] (never a reference into
/// shared memory). Valid while the buffer is held.
#[derive(Debug)]
pub struct BufferView<'a> {
    region: &'a Region,
    at: usize,
    len: usize,
}

impl BufferView<'_> {
    /// Length of the message.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `dst.len()` bytes from `offset` within the message.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), RecvError> {
        let end = offset.saturating_add(dst.len());
        if end > self.len {
            return Err(RecvError::BufferTooSmall { needed: end });
        }
        self.region
            .copy_out(self.at + offset, dst)
            .map_err(|e| RecvError::Broken(e.into()))
    }

    /// Copies the whole message into the front of `buf` (the validated copy-out for
    /// untrusted data: validate the returned bytes, not the buffer).
    pub fn copy_to<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], RecvError> {
        let dst = buf
            .get_mut(..self.len)
            .ok_or(RecvError::BufferTooSmall { needed: self.len })?;
        self.read(0, dst)?;
        Ok(dst)
    }

    /// Folds `f` over the message's words in place (`len` rounded up to whole
    /// words; bytes past `len` in the last word are whatever the buffer holds).
    pub fn fold_words<A>(&self, init: A, f: impl FnMut(A, u64) -> A) -> Result<A, RecvError> {
        self.region
            .fold_words(self.at, self.len.div_ceil(WORD), init, f)
            .map_err(|e| RecvError::Broken(e.into()))
    }
}

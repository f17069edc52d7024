//! The sending end: owns the buffers, lends them, takes back only what it lent.

use core::fmt;

use zerocopy::IntoBytes;
use zerocopy::little_endian::{U32, U64};

use super::layout::{PoolError, PoolLayout, RECORD};
use super::ledger::Ledger;
use crate::fault::{Fault, FaultLatch};
use crate::layout::{POOL_RECORD_INLINE, POOL_RECORD_MORE, PoolRecord};
use crate::shm::{Region, WORD};
use crate::spsc::{ConsumeError, Consumer, ProduceError, Producer};
use crate::sync::Ordering;

/// Why the sender could not loan or send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Every buffer is lent or loaned: retry after the receiver returns some.
    NoBuffer,
    /// The submission ring is full: retry after the receiver takes messages.
    Full,
    /// The message is larger than the pool carries.
    TooLarge {
        /// Length asked for.
        len: usize,
        /// Largest length possible.
        capacity: usize,
    },
    /// The loan is not one this sender handed out (another pool's loan).
    ForeignLoan,
    /// The receiver broke the protocol; the sender is latched broken.
    Broken(Fault),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoBuffer => write!(
                f,
                "every pool buffer is in use; retry once the receiver returns one"
            ),
            SendError::Full => write!(f, "submission ring is full; retry later"),
            SendError::TooLarge { len, capacity } => write!(
                f,
                "a {len}-byte message exceeds the {capacity} bytes this pool carries; \
                 use larger or more buffers"
            ),
            SendError::ForeignLoan => {
                write!(
                    f,
                    "this loan was not handed out by this sender; send it on its own pool"
                )
            }
            SendError::Broken(fault) => write!(f, "pool is broken: {fault}"),
        }
    }
}

impl core::error::Error for SendError {}

/// A send that did not happen: the error and the loan, still the caller's.
#[derive(Debug)]
pub struct SendFailed {
    /// Why the send failed.
    pub error: SendError,
    /// The loan, to retry or [`PoolSender::cancel`].
    pub loan: Loan,
}

/// A buffer loaned to the sender's own code for writing; hand it to
/// [`PoolSender::send`] or [`PoolSender::cancel`]. Dropping it keeps the buffer out
/// of use until [`PoolSender::reclaim_all`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a dropped loan keeps its buffer out of use; send or cancel it"]
pub struct Loan {
    pool: usize,
    index: usize,
}

impl Loan {
    /// Index of the loaned buffer in the pool.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// The single sender of a buffer pool.
#[derive(Debug)]
pub struct PoolSender {
    region: Region,
    layout: PoolLayout,
    submit: Producer,
    completions: Consumer,
    ledger: Ledger,
    faults: FaultLatch,
}

impl PoolSender {
    /// Attaches to the pool at `offset`; every buffer starts free.
    pub fn attach(region: Region, offset: usize) -> Result<PoolSender, PoolError> {
        let layout = PoolLayout::read(&region, offset)?;
        let submit = Producer::attach(region.clone(), layout.submit_ring())?;
        let completions = Consumer::attach(region.clone(), layout.completion_ring())?;
        Ok(PoolSender {
            region,
            ledger: Ledger::new(layout.buffer_count()),
            layout,
            submit,
            completions,
            faults: FaultLatch::default(),
        })
    }

    /// The pool's layout.
    pub fn layout(&self) -> &PoolLayout {
        &self.layout
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.layout.buffer_size()
    }

    /// Largest message [`PoolSender::send_bytes`] carries.
    pub fn max_message_size(&self) -> usize {
        self.layout.max_message_size()
    }

    /// Buffers free to loan (without collecting returns).
    pub fn free_buffers(&self) -> usize {
        self.ledger.free_count()
    }

    /// Buffers lent to the receiver and not yet returned.
    pub fn lent_buffers(&self) -> usize {
        self.ledger.lent_count()
    }

    /// The latched fault, if the receiver broke the protocol.
    pub fn fault(&self) -> Option<Fault> {
        self.faults.get()
    }

    /// Number of faults detected.
    pub fn fault_count(&self) -> u64 {
        self.faults.count()
    }

    /// Loans a free buffer for writing in place, collecting returns if none is free.
    pub fn loan(&mut self) -> Result<Loan, SendError> {
        self.check()?;
        if self.ledger.free_count() == 0 {
            self.collect()?;
        }
        let index = self.ledger.take().ok_or(SendError::NoBuffer)?;
        Ok(Loan {
            pool: self.layout.offset(),
            index,
        })
    }

    /// A writer for a loaned buffer.
    pub fn writer(&self, loan: &Loan) -> BufferWriter<'_> {
        BufferWriter {
            region: &self.region,
            at: self.layout.buffer(loan.index),
            capacity: self.layout.buffer_size(),
        }
    }

    /// The loan of buffer `index`, if that buffer is loaned and not yet sent.
    ///
    /// For bindings that hand out buffer indices instead of [`Loan`] tokens (the C
    /// ABI). The private ledger still decides every transition: a second token for
    /// one buffer is refused by [`PoolSender::send`] once the first was sent.
    pub fn loan_at(&self, index: usize) -> Option<Loan> {
        (index < self.layout.buffer_count() && self.ledger.is_loaned(index)).then_some(Loan {
            pool: self.layout.offset(),
            index,
        })
    }

    /// Gives an unsent loan back to the free set.
    pub fn cancel(&mut self, loan: Loan) -> Result<(), SendError> {
        self.owned(&loan)?;
        self.ledger.cancel(loan.index);
        Ok(())
    }

    /// Hands the first `len` bytes of a loaned buffer to the receiver.
    ///
    /// On failure the loan comes back in [`SendFailed`].
    pub fn send(&mut self, loan: Loan, len: usize) -> Result<(), SendFailed> {
        let capacity = self.layout.buffer_size();
        let checked = match self.check().and(self.owned(&loan)) {
            Ok(()) if len > capacity => Err(SendError::TooLarge { len, capacity }),
            other => other,
        };
        if let Err(error) = checked {
            return Err(SendFailed { error, loan });
        }
        let record = self.record(loan.index, len, 0);
        match self.submit_records(&[record]) {
            Ok(()) => {
                self.ledger.lend(loan.index);
                Ok(())
            }
            Err(error) => Err(SendFailed { error, loan }),
        }
    }

    /// Copies `msg` to the receiver: inline in the ring when it fits a slot,
    /// otherwise into as many buffers as it needs, all sent in one commit (the
    /// receiver sees the whole message or nothing).
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.check()?;
        let inline = self.layout.geometry().inline_size as usize;
        if msg.len() <= inline {
            return self.send_inline(msg);
        }
        let capacity = self.max_message_size();
        if msg.len() > capacity {
            return Err(SendError::TooLarge {
                len: msg.len(),
                capacity,
            });
        }
        let size = self.layout.buffer_size();
        let fragments = msg.len().div_ceil(size);
        if self.ledger.free_count() < fragments {
            self.collect()?;
            if self.ledger.free_count() < fragments {
                return Err(SendError::NoBuffer);
            }
        }
        let reservation = self.submit.reserve(fragments).map_err(ring_error)?;
        if reservation.len() < fragments {
            return Err(SendError::Full);
        }
        let mut taken = [0usize; super::layout::MAX_FRAGMENTS];
        let mut took = 0;
        let mut failed = None;
        for (k, chunk) in msg.chunks(size).enumerate() {
            let Some(index) = self.ledger.take() else {
                failed = Some(SendError::NoBuffer);
                break;
            };
            taken[k] = index;
            took += 1;
            let flags = if k + 1 < fragments {
                POOL_RECORD_MORE
            } else {
                0
            };
            let record = record_for(&self.layout, index, chunk.len(), flags);
            let wrote = self
                .region
                .copy_in(self.layout.buffer(index), chunk)
                .map_err(|e| SendError::Broken(e.into()))
                .and_then(|()| {
                    reservation
                        .slot(k)
                        .write(record.as_bytes())
                        .map_err(ring_error)
                });
            if let Err(e) = wrote {
                failed = Some(e);
                break;
            }
        }
        if let Some(error) = failed {
            for &i in &taken[..took] {
                self.ledger.cancel(i);
            }
            return Err(match error {
                SendError::Broken(f) => SendError::Broken(self.raise(f)),
                e => e,
            });
        }
        let committed = reservation.commit(fragments);
        if committed != fragments {
            let fault = self.submit.fault().unwrap_or(Fault::OutOfBounds);
            return Err(SendError::Broken(self.raise(fault)));
        }
        for &i in &taken[..fragments] {
            self.ledger.lend(i);
        }
        Ok(())
    }

    /// Takes back every buffer the receiver returned; returns how many.
    ///
    /// Each return is read once and must name a buffer on loan to the receiver:
    /// a foreign or misaligned offset, a double return or a return of a buffer
    /// never lent latches a fault.
    pub fn collect(&mut self) -> Result<usize, SendError> {
        self.check()?;
        let base = self.completions.released();
        let mut batch = match self.completions.peek(self.layout.buffer_count()) {
            Ok(batch) => batch,
            Err(ConsumeError::Empty) => return Ok(0),
            Err(ConsumeError::Broken(f)) => return Err(SendError::Broken(self.faults.raise(f))),
            Err(ConsumeError::BufferTooSmall { .. }) => unreachable_buffer(),
        };
        let n = batch.len();
        let mut fault = None;
        let mut accepted = 0;
        for k in 0..n {
            let mut word = [0u8; WORD];
            let read = batch.get(k).and_then(|view| match view.len() {
                WORD => view.read(0, &mut word),
                other => Err(ConsumeError::BufferTooSmall { needed: other }),
            });
            let offset = u64::from_le_bytes(word);
            let outcome = match read {
                Err(ConsumeError::Broken(f)) => Err(f),
                Err(_) => Err(Fault::BadRecord {
                    position: base + k as u64,
                    reason: "a completion must be one 8-byte buffer offset",
                }),
                Ok(()) => match self.layout.index_of(offset) {
                    None => Err(Fault::BadBufferOffset { offset }),
                    Some(i) if self.ledger.accept_return(i) => Ok(()),
                    Some(_) => Err(Fault::NotLent { offset }),
                },
            };
            match outcome {
                Ok(()) => accepted += 1,
                Err(f) => {
                    fault = Some(f);
                    break;
                }
            }
        }
        batch.release(accepted);
        match fault {
            Some(f) => Err(SendError::Broken(self.raise(f))),
            None => Ok(accepted),
        }
    }

    /// Every buffer lent to the receiver becomes free again; returns how many.
    ///
    /// Call this only after the platform has fenced a dead receiver (it can no
    /// longer read or write the region): its loans can never come back. The rings
    /// are re-created when a new receiver connects; this only repairs the
    /// sender's private record.
    pub fn reclaim_all(&mut self) -> usize {
        self.ledger.reclaim_lent()
    }

    fn send_inline(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let record = PoolRecord {
            offset: U64::new(0),
            len: U32::new(msg.len() as u32),
            flags: U32::new(POOL_RECORD_INLINE),
        };
        let reservation = self.submit.reserve(1).map_err(ring_error)?;
        let slot = reservation.slot(0);
        let wrote = slot
            .write_at(0, record.as_bytes())
            .and_then(|()| slot.write_at(RECORD, msg))
            .and_then(|()| slot.set_len(RECORD + msg.len()));
        if let Err(e) = wrote {
            return Err(self.ring_fault(e));
        }
        reservation.commit(1);
        Ok(())
    }

    fn submit_records(&mut self, records: &[PoolRecord]) -> Result<(), SendError> {
        let reservation = self.submit.reserve(records.len()).map_err(ring_error)?;
        if reservation.len() < records.len() {
            return Err(SendError::Full);
        }
        for (k, r) in records.iter().enumerate() {
            if let Err(e) = reservation.slot(k).write(r.as_bytes()) {
                return Err(self.ring_fault(e));
            }
        }
        reservation.commit(records.len());
        Ok(())
    }

    fn record(&self, index: usize, len: usize, flags: u32) -> PoolRecord {
        record_for(&self.layout, index, len, flags)
    }

    fn owned(&self, loan: &Loan) -> Result<(), SendError> {
        if loan.pool == self.layout.offset() && self.ledger.is_loaned(loan.index) {
            Ok(())
        } else {
            Err(SendError::ForeignLoan)
        }
    }

    fn check(&self) -> Result<(), SendError> {
        match self.faults.get() {
            Some(f) => Err(SendError::Broken(f)),
            None => Ok(()),
        }
    }

    fn ring_fault(&mut self, e: ProduceError) -> SendError {
        match ring_error(e) {
            SendError::Broken(f) => SendError::Broken(self.raise(f)),
            other => other,
        }
    }

    fn raise(&mut self, fault: Fault) -> Fault {
        let fault = self.faults.raise(fault);
        // Relaxed: a statistic for observers, in the sender's own section (the
        // completion ring's consumer words); nothing is ordered by it.
        let word = self.completions.layout().consumer_faults_word();
        let total = self.faults.count() + self.completions.fault_count();
        let _ = self.region.store(word, total, Ordering::Relaxed);
        fault
    }
}

fn record_for(layout: &PoolLayout, index: usize, len: usize, flags: u32) -> PoolRecord {
    PoolRecord {
        offset: U64::new((index * layout.buffer_size()) as u64),
        len: U32::new(len as u32),
        flags: U32::new(flags),
    }
}

fn ring_error(e: ProduceError) -> SendError {
    match e {
        ProduceError::Full => SendError::Full,
        ProduceError::TooLarge { len, capacity } => SendError::TooLarge { len, capacity },
        ProduceError::Broken(f) => SendError::Broken(f),
    }
}

/// `peek` never reports a small buffer: it copies nothing.
fn unreachable_buffer() -> ! {
    unreachable!("Consumer::peek never returns BufferTooSmall")
}

/// In-place writer for a loaned buffer (every access through [`Region`]).
#[derive(Debug)]
pub struct BufferWriter<'a> {
    region: &'a Region,
    at: usize,
    capacity: usize,
}

impl BufferWriter<'_> {
    /// Bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copies `bytes` into the buffer at `offset`.
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<(), SendError> {
        let end = offset.saturating_add(bytes.len());
        if end > self.capacity {
            return Err(SendError::TooLarge {
                len: end,
                capacity: self.capacity,
            });
        }
        // Relaxed stores, published by the Release stamp store of the submission.
        self.region
            .copy_in(self.at + offset, bytes)
            .map_err(|e| SendError::Broken(e.into()))
    }

    /// Writes `f(i)` into each of the first `words` 8-byte words (little-endian).
    pub fn fill_words(&self, words: usize, f: impl FnMut(usize) -> u64) -> Result<(), SendError> {
        let len = words.saturating_mul(WORD);
        if len > self.capacity {
            return Err(SendError::TooLarge {
                len,
                capacity: self.capacity,
            });
        }
        self.region
            .store_words(self.at, words, f)
            .map_err(|e| SendError::Broken(e.into()))
    }
}

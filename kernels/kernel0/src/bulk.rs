//! Zero-copy bulk transfers through a node's mkipc buffer pool: kernel0
//! asks for `count` messages of one full 64 KiB buffer each; the node
//! loans, fills and sends; kernel0 reads each buffer in place through the
//! pool's `BufferView` (no copy), verifies its header and checksum word,
//! and gives it back so the node can loan it again. The node's answer on
//! the response ring carries the fold of all the checksums, which must
//! match kernel0's.

use crate::error::Error;
use crate::nodes::Node;
use crate::pingpong::{self, Mode};
use bootparse::layout;
use bootparse::wire::{BULK_FOLD_INIT, BulkCheck, OP_BULK, bulk_arg, bulk_fold};
use mkipc::pool::{Held, PoolReceiver, RecvError};
use platform::control::Control;
use platform::cpu;
use platform::tsc;

/// Messages per measured transfer.
pub const MESSAGES: u32 = 64;
/// Bound on the wait for any one message.
const MESSAGE_TIMEOUT_US: u64 = 500_000;

/// One verified transfer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transfer {
    /// Payload bytes moved.
    pub bytes: u64,
    /// TSC cycles from the request to the node's answer.
    pub cycles: u64,
}

/// Running totals over every transfer of the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Verified transfers.
    pub transfers: u64,
    /// Verified messages.
    pub messages: u64,
    /// Payload bytes verified.
    pub bytes: u64,
    /// Cycles the transfers took.
    pub cycles: u64,
    /// Best single-transfer rate, bytes per second.
    pub best_bps: u64,
}

impl Totals {
    /// Adds a transfer.
    pub fn add(&mut self, t: Transfer) {
        self.transfers += 1;
        self.messages += t.bytes / u64::from(layout::POOL_BUFFER_SIZE);
        self.bytes += t.bytes;
        self.cycles += t.cycles;
        self.best_bps = self.best_bps.max(t.bytes_per_s());
    }

    /// Aggregate rate, bytes per second.
    pub fn bytes_per_s(&self) -> u64 {
        Transfer {
            bytes: self.bytes,
            cycles: self.cycles,
        }
        .bytes_per_s()
    }
}

impl Transfer {
    /// Bytes per second.
    pub fn bytes_per_s(&self) -> u64 {
        let ns = tsc::ns_from_cycles(self.cycles).max(1);
        (u128::from(self.bytes) * 1_000_000_000 / u128::from(ns)) as u64
    }
}

/// A seed that differs per transfer.
fn seed() -> u32 {
    let t = cpu::rdtsc();
    (t ^ (t >> 32)) as u32 | 1
}

/// Receives the next bulk message, waiting up to the message timeout.
pub fn next(id: u32, pool: &mut PoolReceiver, msg: u32) -> Result<Held, Error> {
    let deadline = tsc::deadline_after_us(MESSAGE_TIMEOUT_US);
    loop {
        match pool.recv() {
            Ok(h) => return Ok(h),
            Err(RecvError::Empty) if !tsc::passed(deadline) => cpu::pause(),
            Err(RecvError::Empty) => return Err(Error::BulkTimeout(id, msg)),
            Err(e) => return Err(Error::BulkRecv(id, e)),
        }
    }
}

/// Reads message `msg` of the transfer with `seed` in place and checks it;
/// returns its checksum.
pub fn verify(
    id: u32,
    pool: &PoolReceiver,
    held: &Held,
    seed: u32,
    msg: u32,
) -> Result<u64, Error> {
    if held.len() != layout::POOL_BUFFER_SIZE as usize {
        return Err(Error::BulkLength(id, msg, held.len()));
    }
    let check = pool
        .view(held)
        .fold_words(BulkCheck::new(), BulkCheck::push)
        .map_err(|e| Error::BulkRecv(id, e))?;
    check
        .finish(seed, msg)
        .map_err(|e| Error::BulkCorrupt(id, msg, e))
}

/// One verified transfer of `count` full buffers from `node`.
pub fn transfer(ctl: &Control, node: &mut Node, count: u32) -> Result<Transfer, Error> {
    let id = node.id;
    // The node answers without a doorbell in poll mode; IPI accounting
    // stays exact.
    pingpong::set_mode(ctl, node, Mode::Poll);
    let seed = seed();
    let t0 = cpu::rdtsc();
    let seq = pingpong::send(node, OP_BULK, bulk_arg(count, seed))?;
    let pool = node.pool.as_mut().ok_or(Error::NoLink(id))?;
    let mut total = BULK_FOLD_INIT;
    for msg in 0..count {
        let held = next(id, pool, msg)?;
        let sum = verify(id, pool, &held, seed, msg)?;
        total = bulk_fold(total, sum);
        pool.give_back(held).map_err(|e| Error::BulkRecv(id, e))?;
    }
    let val = pingpong::await_answer(node, Mode::Poll, seq)?;
    let cycles = cpu::rdtsc() - t0;
    if val != total {
        return Err(Error::BulkTotal(id, val, total));
    }
    Ok(Transfer {
        bytes: u64::from(count) * u64::from(layout::POOL_BUFFER_SIZE),
        cycles,
    })
}

/// Buffers the node lends before a crash cycle's crash command.
pub const IN_FLIGHT: u32 = 6;
/// Of those, how many kernel0 holds (read, verified, not given back).
pub const HOLD: usize = 2;

/// A transfer left unfinished on purpose: the node has lent
/// [`IN_FLIGHT`] buffers, kernel0 holds [`HOLD`] of them and the rest
/// are still queued on the submission ring when the node crashes.
pub struct InFlight {
    seed: u32,
    answer: u64,
    fold: u64,
    held: [Option<Held>; HOLD],
}

/// Asks `node` for [`IN_FLIGHT`] buffers, waits for its answer (all sent),
/// and takes and verifies only the first [`HOLD`], keeping them.
pub fn leave_in_flight(ctl: &Control, node: &mut Node) -> Result<InFlight, Error> {
    let id = node.id;
    pingpong::set_mode(ctl, node, Mode::Poll);
    let seed = seed();
    let seq = pingpong::send(node, OP_BULK, bulk_arg(IN_FLIGHT, seed))?;
    let answer = pingpong::await_answer(node, Mode::Poll, seq)?;
    let pool = node.pool.as_mut().ok_or(Error::NoLink(id))?;
    let mut f = InFlight {
        seed,
        answer,
        fold: BULK_FOLD_INIT,
        held: [const { None }; HOLD],
    };
    for (msg, slot) in f.held.iter_mut().enumerate() {
        let held = next(id, pool, msg as u32)?;
        f.fold = bulk_fold(f.fold, verify(id, pool, &held, seed, msg as u32)?);
        *slot = Some(held);
    }
    Ok(f)
}

/// What kernel0 found of a dead node's bulk buffers after fencing it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reclaimed {
    /// Buffers kernel0 held.
    pub held: u64,
    /// Buffers still queued on the submission ring, verified in place.
    pub queued: u64,
}

/// After the node is fenced (it can no longer write the pool): takes the
/// rest of the unfinished transfer off the submission ring, verifies it
/// against the node's answer, and counts every buffer the dead node had
/// lent. The caller then drops the receiving end; the restart formats the
/// pool afresh under the new epoch, so all of them are free again.
pub fn reclaim(id: u32, pool: &mut PoolReceiver, f: InFlight) -> Result<Reclaimed, Error> {
    let held = f.held.iter().flatten().count() as u64;
    if held != pool.held_buffers() as u64 {
        return Err(Error::Reclaim(id, held, pool.held_buffers() as u64));
    }
    let mut fold = f.fold;
    let mut msg = HOLD as u32;
    while msg < IN_FLIGHT {
        let h = next(id, pool, msg)?;
        fold = bulk_fold(fold, verify(id, pool, &h, f.seed, msg)?);
        msg += 1;
    }
    if fold != f.answer {
        return Err(Error::BulkTotal(id, f.answer, fold));
    }
    match pool.recv() {
        Err(RecvError::Empty) => {}
        Ok(_) => return Err(Error::Reclaim(id, u64::from(IN_FLIGHT), u64::from(msg) + 1)),
        Err(e) => return Err(Error::BulkRecv(id, e)),
    }
    let r = Reclaimed {
        held,
        queued: u64::from(msg) - held,
    };
    if r.held + r.queued != u64::from(IN_FLIGHT) || pool.held_buffers() != IN_FLIGHT as usize {
        return Err(Error::Reclaim(id, u64::from(IN_FLIGHT), r.held + r.queued));
    }
    Ok(r)
}

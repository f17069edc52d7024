//! Bulk transfers: one-way streams of large payloads (4 KiB .. 1 MiB), written in
//! full by the sender and read in full (every word checked) by the receiver.
//!
//! * `mkipc-pool`: loan a pool buffer, write it in place, send (offset, length);
//!   the receiver reads it in place and gives it back. No copy.
//! * `copy-ring`: what a user does without a pool: the payload is built in the
//!   sender's own memory, copied into an mkipc SPSC ring in 16 KiB chunks, copied
//!   out into the receiver's memory, and read there.
//! * `memcpy`: one `memcpy` of the payload between two buffers on one core: the
//!   copy floor (no second core, no synchronisation).
//! * `uds`: a Unix stream socket pair, `write_all`/`read_exact`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use mkipc::pool::{self, PoolGeometry, PoolReceiver, PoolSender, RecvError, SendError};
use mkipc::spsc::{self, ConsumeError, Consumer, Geometry, ProduceError, Producer};
use mkipc::{MessageType, Region};
use mkipc_sys::linux::pin_current_thread;

use crate::harness::Cpus;

/// Payload size of the ringbench bulk entries.
pub const MIB: usize = 1 << 20;

/// Buffers in the pool: enough for the sender to write one while the receiver
/// reads another.
const POOL_BUFFERS: u32 = 4;

/// Chunk (slot payload) of the copying ring, and its slot count (a 1 MiB ring).
const CHUNK: usize = 16 << 10;
const CHUNK_SLOTS: u32 = 64;

/// Transfers before the clock starts.
const WARMUP: u64 = 8;

/// One bulk contender.
pub struct BulkContender {
    /// Base name; the report appends the size (`mkipc-pool` -> `mkipc-pool-1MiB`).
    pub name: &'static str,
    /// Streams `n` transfers of `bytes` (a multiple of 8) and returns the
    /// receiver's wall time for them.
    pub run: fn(Option<Cpus>, usize, u64) -> Duration,
}

/// Every bulk contender, in report order.
pub static BULK: &[BulkContender] = &[
    BulkContender {
        name: "mkipc-pool",
        run: pool_stream,
    },
    BulkContender {
        name: "copy-ring",
        run: copy_ring_stream,
    },
    BulkContender {
        name: "memcpy",
        run: memcpy_stream,
    },
    BulkContender {
        name: "uds",
        run: uds_stream,
    },
];

/// `"1MiB"`, `"4KiB"`, or bytes.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= MIB && b.is_multiple_of(MIB) => format!("{}MiB", b / MIB),
        b if b >= 1024 && b.is_multiple_of(1024) => format!("{}KiB", b / 1024),
        b => format!("{b}B"),
    }
}

/// The word `i` of transfer `seq`: every word differs, and so does every transfer.
#[inline(always)]
fn pattern(seq: u64, i: usize) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64
}

/// Writes transfer `seq`'s pattern into `buf` (every byte).
#[inline]
fn fill(buf: &mut [u8], seq: u64) {
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&pattern(seq, i).to_le_bytes());
    }
}

/// Reads every word of `buf`, checking transfer `seq`'s pattern.
#[inline]
fn verify(buf: &[u8], seq: u64) {
    let bad = buf
        .chunks_exact(8)
        .enumerate()
        .filter(|(i, w)| u64::from_le_bytes((*w).try_into().unwrap()) != pattern(seq, *i))
        .count();
    assert_eq!(bad, 0, "transfer {seq} arrived with {bad} wrong words");
}

/// Runs `send(first, n)` on a thread pinned to `cpus.server` and `recv(first, n)`
/// here (pinned to `cpus.client`): `WARMUP` untimed transfers, then `n` timed.
fn stream<S, R>(cpus: Option<Cpus>, n: u64, mut send: S, mut recv: R) -> Duration
where
    S: FnMut(u64, u64) + Send + 'static,
    R: FnMut(u64, u64),
{
    if let Some(cpus) = cpus {
        pin_current_thread(cpus.client).expect("pin receiver thread");
    }
    let sender = std::thread::spawn(move || {
        if let Some(cpus) = cpus {
            pin_current_thread(cpus.server).expect("pin sender thread");
        }
        send(1, WARMUP + n);
    });
    recv(1, WARMUP);
    let start = Instant::now();
    recv(1 + WARMUP, n);
    let elapsed = start.elapsed();
    sender.join().expect("sender thread panicked");
    elapsed
}

/// A pool with `bytes`-sized buffers over a fresh heap region.
pub fn pool_pair(bytes: usize) -> (PoolSender, PoolReceiver) {
    let g = PoolGeometry::new(POOL_BUFFERS, bytes as u32);
    let region = Region::new_heap(g.pool_size().expect("valid pool geometry"));
    pool::channel(&region, 0, g, MessageType::bytes(bytes as u32)).expect("pool")
}

fn pool_stream(cpus: Option<Cpus>, bytes: usize, n: u64) -> Duration {
    let (mut tx, mut rx) = pool_pair(bytes);
    let words = bytes / 8;
    let send = move |first: u64, n: u64| {
        for seq in first..first + n {
            let loan = loop {
                match tx.loan() {
                    Ok(loan) => break loan,
                    Err(SendError::NoBuffer) => std::hint::spin_loop(),
                    Err(e) => panic!("pool loan: {e}"),
                }
            };
            tx.writer(&loan)
                .fill_words(words, |i| pattern(seq, i))
                .expect("write loan");
            let mut loan = loan;
            while let Err(failed) = tx.send(loan, bytes) {
                assert_eq!(failed.error, SendError::Full, "pool send");
                loan = failed.loan;
                std::hint::spin_loop();
            }
        }
    };
    let recv = move |first: u64, n: u64| {
        for seq in first..first + n {
            let held = loop {
                match rx.recv() {
                    Ok(held) => break held,
                    Err(RecvError::Empty) => std::hint::spin_loop(),
                    Err(e) => panic!("pool receive: {e}"),
                }
            };
            assert_eq!(held.len(), bytes);
            let (_, bad) = rx
                .view(&held)
                .fold_words((0usize, 0usize), |(i, bad), w| {
                    (i + 1, bad + usize::from(w != pattern(seq, i)))
                })
                .expect("read held buffer");
            assert_eq!(bad, 0, "transfer {seq} arrived with {bad} wrong words");
            rx.give_back(held).expect("give back");
        }
    };
    stream(cpus, n, send, recv)
}

fn copy_ring_pair() -> (Producer, Consumer) {
    let g = Geometry::new(CHUNK_SLOTS, CHUNK as u32);
    let region = Region::new_heap(g.ring_size().expect("valid ring geometry"));
    spsc::channel(&region, 0, g).expect("ring")
}

fn copy_ring_stream(cpus: Option<Cpus>, bytes: usize, n: u64) -> Duration {
    let (mut tx, mut rx) = copy_ring_pair();
    let send = move |first: u64, n: u64| {
        let mut src = vec![0u8; bytes];
        for seq in first..first + n {
            fill(&mut src, seq);
            let mut chunks = src.chunks(CHUNK).peekable();
            while chunks.peek().is_some() {
                let batch = match tx.reserve(CHUNK_SLOTS as usize) {
                    Ok(batch) => batch,
                    Err(ProduceError::Full) => {
                        std::hint::spin_loop();
                        continue;
                    }
                    Err(e) => panic!("copy ring reserve: {e}"),
                };
                let mut written = 0;
                for k in 0..batch.len() {
                    let Some(chunk) = chunks.next() else { break };
                    batch.slot(k).write(chunk).expect("copy chunk in");
                    written += 1;
                }
                batch.commit(written);
            }
        }
    };
    let recv = move |first: u64, n: u64| {
        let mut dst = vec![0u8; bytes];
        for seq in first..first + n {
            let mut at = 0;
            while at < bytes {
                let mut batch = match rx.peek(CHUNK_SLOTS as usize) {
                    Ok(batch) => batch,
                    Err(ConsumeError::Empty) => {
                        std::hint::spin_loop();
                        continue;
                    }
                    Err(e) => panic!("copy ring peek: {e}"),
                };
                let mut taken = 0;
                for k in 0..batch.len() {
                    if at == bytes {
                        break;
                    }
                    let view = batch.get(k).expect("chunk");
                    let len = view.len();
                    view.read(0, &mut dst[at..at + len])
                        .expect("copy chunk out");
                    at += len;
                    taken += 1;
                }
                batch.release(taken);
            }
            verify(&dst, seq);
        }
    };
    stream(cpus, n, send, recv)
}

fn memcpy_stream(cpus: Option<Cpus>, bytes: usize, n: u64) -> Duration {
    if let Some(cpus) = cpus {
        pin_current_thread(cpus.client).expect("pin memcpy thread");
    }
    let mut src = vec![0u8; bytes];
    fill(&mut src, 1);
    let mut dst = vec![0u8; bytes];
    for _ in 0..WARMUP {
        dst.copy_from_slice(std::hint::black_box(&src));
    }
    let start = Instant::now();
    for _ in 0..n {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    let elapsed = start.elapsed();
    verify(&dst, 1);
    elapsed
}

fn uds_stream(cpus: Option<Cpus>, bytes: usize, n: u64) -> Duration {
    let (mut tx, mut rx) = UnixStream::pair().expect("socket pair");
    let send = move |first: u64, n: u64| {
        let mut src = vec![0u8; bytes];
        for seq in first..first + n {
            fill(&mut src, seq);
            tx.write_all(&src).expect("socket write");
        }
    };
    let recv = move |first: u64, n: u64| {
        let mut dst = vec![0u8; bytes];
        for seq in first..first + n {
            rx.read_exact(&mut dst).expect("socket read");
            verify(&dst, seq);
        }
    };
    stream(cpus, n, send, recv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_sizes() {
        assert_eq!(size_label(MIB), "1MiB");
        assert_eq!(size_label(4096), "4KiB");
        assert_eq!(size_label(24), "24B");
    }

    #[test]
    #[should_panic(expected = "wrong words")]
    fn verify_catches_a_torn_payload() {
        let mut b = vec![0u8; 64];
        fill(&mut b, 3);
        b[17] ^= 1;
        verify(&b, 3);
    }

    /// Every bulk contender moves checked payloads at two sizes (unpinned).
    #[test]
    fn every_bulk_contender_delivers_checked_payloads() {
        for c in BULK {
            eprintln!("bulk contender {}", c.name);
            for bytes in [4096, 64 << 10] {
                (c.run)(None, bytes, 20);
            }
        }
    }
}

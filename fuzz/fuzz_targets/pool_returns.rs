//! A hostile receiver and a hostile sender around one buffer pool: the input
//! scripts loans, sends, receives and returns by correct ends interleaved with
//! arbitrary writes into the pool's rings and buffers. Neither end may panic; the
//! sender accepts back only buffers it lent (the free and lent counts always add
//! up to the pool), and the receiver hands out only records that fit the pool.

#![no_main]

use core::sync::atomic::Ordering;

use libfuzzer_sys::fuzz_target;
use mkipc::pool::{self, PoolGeometry, RecvError};
use mkipc::{MessageType, Region};

const BUFFERS: usize = 4;
const SIZE: usize = 256;

fuzz_target!(|data: &[u8]| {
    let geometry = PoolGeometry::new(BUFFERS as u32, SIZE as u32);
    let Ok(size) = geometry.pool_size() else {
        return;
    };
    let region = Region::new_heap(size);
    let kind = MessageType::bytes(geometry.max_message_size() as u32);
    let Ok((mut tx, mut rx)) = pool::channel(&region, 0, geometry, kind) else {
        return;
    };
    let mut held = Vec::new();
    let mut buf = vec![0u8; geometry.max_message_size()];
    for op in data.chunks(9) {
        let (&op_kind, arg) = op.split_first().unwrap_or((&0, &[]));
        match op_kind % 7 {
            0 => {
                if let Ok(loan) = tx.loan() {
                    let len = usize::from(arg.first().copied().unwrap_or(0));
                    let _ = tx.writer(&loan).write_at(0, arg);
                    let _ = tx.send(loan, len.min(SIZE));
                }
            }
            1 => {
                let len = usize::from(arg.first().copied().unwrap_or(0)) * 9;
                let _ = tx.send_bytes(&buf[..len.min(buf.len())]);
            }
            2 if arg.len() == 8 => {
                // Scribble over the pool's shared words (rings, descriptor, buffers).
                let word = (usize::from(arg[0]) << 4 | usize::from(arg[1])) * 8 % size;
                let value = u64::from_le_bytes(arg.try_into().unwrap_or_default());
                let _ = region.store(word / 8 * 8, value, Ordering::Relaxed);
            }
            3 => match rx.recv() {
                Ok(h) => {
                    assert!(h.len() <= SIZE);
                    let mut first = [0u8; 8];
                    let _ = rx.view(&h).read(0, &mut first[..h.len().min(8)]);
                    held.push(h);
                }
                Err(RecvError::NeedsCopy) => {
                    if let Ok(n) = rx.recv_bytes(&mut buf) {
                        assert!(n <= buf.len());
                    }
                }
                Err(_) => {}
            },
            4 => {
                if let Some(h) = held.pop() {
                    let _ = rx.give_back(h);
                }
            }
            5 => {
                let _ = tx.collect();
            }
            _ => {
                tx.reclaim_all();
            }
        }
        assert!(tx.free_buffers() + tx.lent_buffers() <= BUFFERS);
        assert!(rx.held_buffers() <= BUFFERS);
    }
});

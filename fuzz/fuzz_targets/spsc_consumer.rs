//! A hostile producer: the input scripts pushes by a correct producer interleaved
//! with arbitrary writes into every producer-owned word and the descriptor; the
//! consumer must only ever return messages that fit, `Empty`, or a latched fault.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mkipc::Region;
use mkipc::spsc::{self, ConsumeError, Consumer, Geometry};

const SLOT: usize = 24;

fuzz_target!(|data: &[u8]| {
    let geometry = Geometry::new(4, SLOT as u32).compact();
    let Ok(size) = geometry.ring_size() else {
        return;
    };
    let region = Region::new_heap(size);
    let Ok((mut tx, _)) = spsc::channel(&region, 0, geometry) else {
        return;
    };
    let mut rx: Option<Consumer> = Consumer::attach(region.clone(), 0).ok();
    let mut buf = [0u8; SLOT];
    for op in data.chunks(9) {
        let (&kind, arg) = op.split_first().unwrap_or((&0, &[]));
        match kind % 4 {
            0 => {
                let _ = tx.push(&arg[..arg.len().min(SLOT)]);
            }
            1 if arg.len() == 8 => {
                // Scribble: the word index comes from the first argument byte.
                let word = usize::from(arg[0]) * 8 % size;
                let value = u64::from_le_bytes(arg.try_into().unwrap_or_default());
                let _ = region.store(word, value, core::sync::atomic::Ordering::Relaxed);
            }
            2 => {
                if let Some(rx) = rx.as_mut() {
                    match rx.pop(&mut buf) {
                        Ok(n) => assert!(n <= SLOT),
                        Err(ConsumeError::Broken(f)) => {
                            assert_eq!(rx.pop(&mut buf), Err(ConsumeError::Broken(f)));
                        }
                        Err(_) => {}
                    }
                }
            }
            _ => rx = Consumer::attach(region.clone(), 0).ok(),
        }
    }
});

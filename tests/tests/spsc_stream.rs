//! Two threads stream 10 million sequenced, checksummed messages through one SPSC
//! ring, with batched reserve/commit and peek/release: zero loss, duplication,
//! reordering or corruption.

use mkipc::Region;
use mkipc::spsc::{self, ConsumeError, Geometry, ProduceError};
use mkipc_tests::{encode, verify};

const MESSAGES: u64 = 10_000_000;
const SLOT: usize = 56;

#[test]
fn ten_million_messages_arrive_intact_and_in_order() {
    let geometry = Geometry::new(256, SLOT as u32);
    let region = Region::new_heap(geometry.ring_size().unwrap());
    let (mut tx, mut rx) = spsc::channel(&region, 0, geometry).unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut buf = [0u8; SLOT];
            let mut seq = 0;
            while seq < MESSAGES {
                // Batch sizes vary from 1 to 16 to cover partial batches.
                let want = (1 + seq % 16).min(MESSAGES - seq) as usize;
                let batch = match tx.reserve(want) {
                    Ok(batch) => batch,
                    Err(ProduceError::Full) => {
                        std::hint::spin_loop();
                        continue;
                    }
                    Err(e) => panic!("producer: {e}"),
                };
                for i in 0..batch.len() {
                    let n = encode(seq + i as u64, SLOT, &mut buf);
                    batch.slot(i).write(&buf[..n]).unwrap();
                }
                seq += batch.commit(usize::MAX) as u64;
            }
        });
        let mut buf = [0u8; SLOT];
        let mut seq = 0;
        while seq < MESSAGES {
            let mut batch = match rx.peek(32) {
                Ok(batch) => batch,
                Err(ConsumeError::Empty) => {
                    std::hint::spin_loop();
                    continue;
                }
                Err(e) => panic!("consumer: {e}"),
            };
            let n = batch.len();
            for i in 0..n {
                let view = batch.get(i).unwrap();
                let msg = view.copy_to(&mut buf).unwrap();
                if let Err(e) = verify(seq + i as u64, msg) {
                    panic!("{e}");
                }
            }
            seq += batch.release(n) as u64;
        }
    });
    assert_eq!(rx.released(), MESSAGES);
    assert_eq!(rx.fault_count(), 0);
}

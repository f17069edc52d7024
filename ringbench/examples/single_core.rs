//! Cost of the code alone: push and pop, and batched streaming, on one core, no
//! cache-line transfers. Handy under `valgrind --tool=callgrind`, whose instruction
//! counts are repeatable when timing noise hides a change.
//!
//! `cargo run --release -p ringbench --example single_core [ITERATIONS [push-pop|stream]]`

use std::time::Instant;

use mkipc::Region;
use mkipc::spsc::{self, Geometry};

/// Messages per batch in the streaming loop (as in ringbench's stream).
const BATCH: usize = 32;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let which = std::env::args().nth(2);
    if which.as_deref() != Some("stream") {
        println!("push + pop of 32 bytes: {:.1} ns", push_pop(n));
    }
    if which.as_deref() != Some("push-pop") {
        println!(
            "64-byte messages in batches of {BATCH}: {:.1} ns each",
            stream(n)
        );
    }
}

fn push_pop(n: u64) -> f64 {
    let g = Geometry::new(64, 48);
    let region = Region::new_heap(g.ring_size().expect("valid geometry"));
    let (mut tx, mut rx) = spsc::channel(&region, 0, g).expect("fresh ring");
    let msg = [7u8; 32];
    let mut buf = [0u8; 32];
    let t = Instant::now();
    for _ in 0..n {
        tx.push(&msg).expect("one slot free");
        rx.pop(&mut buf).expect("one message queued");
    }
    std::hint::black_box(&buf);
    t.elapsed().as_nanos() as f64 / n as f64
}

fn stream(n: u64) -> f64 {
    let g = Geometry::new(256, 64).dense();
    let region = Region::new_heap(g.ring_size().expect("valid geometry"));
    let (mut tx, mut rx) = spsc::channel(&region, 0, g).expect("fresh ring");
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let batches = n / BATCH as u64;
    let t = Instant::now();
    for _ in 0..batches {
        let batch = tx.reserve(BATCH).expect("free slots");
        for i in 0..batch.len() {
            batch.slot(i).write(&msg).expect("fits");
        }
        let sent = batch.len();
        batch.commit(sent);
        let mut batch = rx.peek(BATCH).expect("published messages");
        for i in 0..batch.len() {
            batch
                .get(i)
                .expect("valid")
                .copy_to(&mut buf)
                .expect("fits");
        }
        let got = batch.len();
        batch.release(got);
    }
    std::hint::black_box(&buf);
    t.elapsed().as_nanos() as f64 / (batches * BATCH as u64) as f64
}

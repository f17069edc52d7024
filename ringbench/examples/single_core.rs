//! Cost of the code alone: push and pop on one core, no cache-line transfers.
//! Handy under `valgrind --tool=callgrind`, whose instruction counts are
//! repeatable when timing noise hides a change.
//!
//! `cargo run --release -p ringbench --example single_core [ITERATIONS]`

use std::time::Instant;

use mkipc::Region;
use mkipc::spsc::{self, Geometry};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
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
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("push + pop of 32 bytes on one core: {ns:.1} ns");
}

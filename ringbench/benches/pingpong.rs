//! Criterion: round trip of the cache-line floor and of mkipc SPSC on the same two
//! pinned cores, timed with `iter_custom` against a persistent echo thread.

use criterion::{Criterion, criterion_group, criterion_main};
use ringbench::contenders::{floor, mkipc_spsc};
use ringbench::harness::{Client, Cpus, Running, Server};

fn bench<C: Client, S: Server>(c: &mut Criterion, name: &str, pair: (C, S)) {
    let cpus = Cpus::first_two().expect("two CPUs");
    let mut running = Running::start(pair, cpus);
    c.bench_function(name, |b| b.iter_custom(|iters| running.time(iters)));
    running.finish();
}

fn round_trip(c: &mut Criterion) {
    bench(c, "rtt/floor", floor::pair());
    bench(c, "rtt/mkipc-spsc", mkipc_spsc::pair());
}

criterion_group!(benches, round_trip);
criterion_main!(benches);

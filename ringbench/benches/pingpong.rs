//! Criterion: round trip of every contender (the cache-line floor, mkipc SPSC and
//! the alternatives) on the same two pinned cores, timed with `iter_custom`
//! against a persistent echo thread.

use criterion::{Criterion, criterion_group, criterion_main};
use ringbench::contenders::ALL;
use ringbench::harness::Cpus;

fn round_trip(c: &mut Criterion) {
    let cpus = Cpus::first_two().expect("two CPUs");
    let mut group = c.benchmark_group("rtt");
    for contender in ALL {
        let mut running = (contender.start)(Some(cpus));
        group.bench_function(contender.name, |b| {
            b.iter_custom(|iters| running.time(iters))
        });
        running.finish();
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);

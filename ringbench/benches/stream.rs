//! Criterion: one-way throughput of 64-byte messages for every contender with a
//! stream, sender and receiver on the same two pinned cores. Each measurement
//! streams `iters` messages after an untimed warm-up (see `harness::stream`).
//! The `fan_in` group streams from several producer threads into one receiver
//! (see `contenders::fan_in`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringbench::contenders::ALL;
use ringbench::contenders::fan_in::FAN_IN;
use ringbench::harness::Cpus;

fn stream(c: &mut Criterion) {
    let cpus = Cpus::first_two().expect("two CPUs");
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for contender in ALL {
        if let Some(run) = contender.stream {
            group.bench_function(contender.name, |b| {
                b.iter_custom(|iters| run(Some(cpus), iters))
            });
        }
    }
    group.finish();
}

/// Fan-in throughput: several producer threads (on one core) into one receiver.
fn fan_in(c: &mut Criterion) {
    let cpus = Cpus::first_two().expect("two CPUs");
    let mut group = c.benchmark_group("fan_in");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for contender in FAN_IN {
        group.bench_function(contender.name, |b| {
            b.iter_custom(|iters| (contender.run)(Some(cpus), iters))
        });
    }
    group.finish();
}

criterion_group!(benches, stream, fan_in);
criterion_main!(benches);

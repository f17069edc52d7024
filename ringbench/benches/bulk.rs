//! Criterion: one-way bulk transfers of 4 KiB .. 1 MiB payloads (every byte written
//! by the sender and read by the receiver) for every bulk contender, on the same
//! two pinned cores. Each measurement streams `iters` transfers after a warm-up.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringbench::contenders::bulk::{BULK, size_label};
use ringbench::harness::Cpus;

fn bulk(c: &mut Criterion) {
    let cpus = Cpus::first_two().expect("two CPUs");
    let mut group = c.benchmark_group("bulk");
    group.sample_size(10);
    for bytes in [4 << 10, 64 << 10, 256 << 10, 1 << 20] {
        group.throughput(Throughput::Bytes(bytes as u64));
        for contender in BULK {
            group.bench_with_input(
                BenchmarkId::new(contender.name, size_label(bytes)),
                &bytes,
                |b, &bytes| b.iter_custom(|iters| (contender.run)(Some(cpus), bytes, iters)),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);

//! Criterion: cross-process round trip of the cache-line floor, mkipc SPSC (polling,
//! and blocking with the futex and the eventfd doorbell), against the eventfd
//! ping-pong and iceoryx2, the client pinned here and the server process (the `ringbench` binary
//! re-executed with `--serve`) on the other core, timed with `iter_custom` against
//! the persistent server.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ringbench::cross_process::find;
use ringbench::harness::Cpus;

fn round_trip(c: &mut Criterion) {
    let cpus = Cpus::first_two().expect("two CPUs");
    let exe = Path::new(env!("CARGO_BIN_EXE_ringbench"));
    let mut group = c.benchmark_group("rtt-xp");
    for name in [
        "floor/xp",
        "mkipc-spsc/xp",
        "eventfd/xp",
        "mkipc-spsc-futex/xp",
        "mkipc-spsc-eventfd/xp",
        "mkipc-spsc-futex-spin/xp",
        "iceoryx2/xp",
    ] {
        let contender = find(name).expect("a cross-process contender");
        let mut running =
            (contender.start)(exe, Some(cpus)).unwrap_or_else(|e| panic!("{name}: {e}"));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                running
                    .time(iters)
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
            })
        });
        running.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);

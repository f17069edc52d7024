//! The floor: one cache line each way, the least any cross-core round trip costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use crate::harness::{Client, Server};

const STOP: u64 = u64::MAX;

#[derive(Default)]
struct Lines {
    ping: CachePadded<AtomicU64>,
    pong: CachePadded<AtomicU64>,
}

/// Writes `ping`, spins until `pong` echoes it.
pub struct FloorClient(Arc<Lines>);
/// Spins on `ping`, copies it to `pong`.
pub struct FloorServer(Arc<Lines>);

/// A connected floor pair.
pub fn pair() -> (FloorClient, FloorServer) {
    let lines = Arc::new(Lines::default());
    (FloorClient(lines.clone()), FloorServer(lines))
}

impl Client for FloorClient {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        // Release/Acquire pairs with the server's loads and stores of the same lines.
        self.0.ping.store(seq, Ordering::Release);
        while self.0.pong.load(Ordering::Acquire) != seq {
            std::hint::spin_loop();
        }
    }

    fn stop(&mut self) {
        self.0.ping.store(STOP, Ordering::Release);
    }
}

impl Server for FloorServer {
    fn serve(&mut self) {
        let mut last = 0;
        loop {
            let v = self.0.ping.load(Ordering::Acquire);
            if v == last {
                std::hint::spin_loop();
                continue;
            }
            if v == STOP {
                return;
            }
            self.0.pong.store(v, Ordering::Release);
            last = v;
        }
    }
}

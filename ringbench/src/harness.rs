//! Runs a client/server pair on two pinned cores and times round trips.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mkipc_sys::linux::{online_cpus, pin_current_thread};

use crate::clock::Clock;

/// The side that sends a request and waits for its echo.
pub trait Client {
    /// One round trip carrying `seq` (non-zero); checks the echo.
    fn round_trip(&mut self, seq: u64);
    /// Tells the server to return from [`Server::serve`].
    fn stop(&mut self);
}

/// The side that echoes requests.
pub trait Server: Send + 'static {
    /// Echoes requests until the client stops it.
    fn serve(&mut self);
}

/// The two cores a measurement runs on.
#[derive(Debug, Clone, Copy)]
pub struct Cpus {
    /// Core of the client (the calling thread).
    pub client: usize,
    /// Core of the server thread.
    pub server: usize,
}

impl Cpus {
    /// The first two CPUs, or an error naming what is missing.
    pub fn first_two() -> Result<Cpus, String> {
        match online_cpus() {
            n if n >= 2 => Ok(Cpus {
                client: 0,
                server: 1,
            }),
            n => Err(format!(
                "ringbench needs two CPUs for a cross-core round trip, this process has {n}"
            )),
        }
    }
}

/// A pair whose server runs on its own pinned thread.
pub struct Running<C: Client> {
    client: C,
    server: Option<JoinHandle<()>>,
    next_seq: u64,
}

impl<C: Client> Running<C> {
    /// Pins the calling thread to `cpus.client`, starts the server on `cpus.server`.
    pub fn start<S: Server>((client, mut server): (C, S), cpus: Cpus) -> Running<C> {
        pin_current_thread(cpus.client).expect("pin client thread");
        let handle = std::thread::spawn(move || {
            pin_current_thread(cpus.server).expect("pin server thread");
            server.serve();
        });
        let mut running = Running {
            client,
            server: Some(handle),
            next_seq: 1,
        };
        running.time(1000); // warm caches and wake the server's core
        running
    }

    /// Total wall time of `iters` back-to-back round trips.
    pub fn time(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.client.round_trip(self.next_seq);
            self.next_seq += 1;
        }
        start.elapsed()
    }

    /// Nanoseconds of each of `n` round trips (clock overhead subtracted).
    pub fn sample(&mut self, n: usize, clock: &Clock) -> Vec<f64> {
        let overhead = clock.overhead_ticks();
        let mut ticks = Vec::with_capacity(n);
        let mut last = clock.now();
        for _ in 0..n {
            self.client.round_trip(self.next_seq);
            self.next_seq += 1;
            let now = clock.now();
            ticks.push(now - last);
            last = now;
        }
        ticks
            .into_iter()
            .map(|t| clock.to_ns(t.saturating_sub(overhead)))
            .collect()
    }

    /// Stops the server and joins its thread.
    pub fn finish(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(handle) = self.server.take() {
            self.client.stop();
            handle.join().expect("server thread panicked");
        }
    }
}

impl<C: Client> Drop for Running<C> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

//! Runs a client/server pair on two pinned cores and times round trips; runs a
//! sender/receiver pair on the same cores and times a one-way stream.

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

/// The producing side of a one-way stream.
pub trait Sender: Send + 'static {
    /// Sends messages `first`, `first + 1`, ... `first + n - 1`, in order.
    fn send(&mut self, first: u64, n: u64);
}

/// The consuming side of a one-way stream.
pub trait Receiver {
    /// Receives `n` messages, checking that they are `first`, `first + 1`, ... in order.
    fn receive(&mut self, first: u64, n: u64);
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

/// A pair whose server runs on its own thread (pinned when given [`Cpus`]).
pub struct Running<C: Client> {
    client: C,
    server: Option<JoinHandle<()>>,
    next_seq: u64,
}

impl<C: Client> Running<C> {
    /// Pins the calling thread to `cpus.client`, starts the server on `cpus.server`.
    pub fn start<S: Server>(pair: (C, S), cpus: Cpus) -> Running<C> {
        Self::start_on(pair, Some(cpus))
    }

    /// As [`Running::start`]; with `None`, neither thread is pinned (for tests,
    /// which share the machine with other tests).
    pub fn start_on<S: Server>((client, mut server): (C, S), cpus: Option<Cpus>) -> Running<C> {
        if let Some(cpus) = cpus {
            pin_current_thread(cpus.client).expect("pin client thread");
        }
        let handle = std::thread::spawn(move || {
            if let Some(cpus) = cpus {
                pin_current_thread(cpus.server).expect("pin server thread");
            }
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
        if std::thread::panicking() {
            // A failed check unwinds through here: the server may be stuck
            // mid-echo, so leave its thread detached rather than hang on a join.
            return;
        }
        self.shutdown();
    }
}

/// A running pair behind one interface, so that contenders of different types can
/// sit in one table ([`crate::contenders::ALL`]). The round-trip loops stay
/// monomorphic: only these calls go through the vtable.
pub trait Echoing {
    /// See [`Running::time`].
    fn time(&mut self, iters: u64) -> Duration;
    /// See [`Running::sample`].
    fn sample(&mut self, n: usize, clock: &Clock) -> Vec<f64>;
    /// See [`Running::finish`].
    fn finish(self: Box<Self>);
}

impl<C: Client> Echoing for Running<C> {
    fn time(&mut self, iters: u64) -> Duration {
        Running::time(self, iters)
    }

    fn sample(&mut self, n: usize, clock: &Clock) -> Vec<f64> {
        Running::sample(self, n, clock)
    }

    fn finish(self: Box<Self>) {
        Running::finish(*self)
    }
}

/// Starts `pair` (see [`Running::start_on`]) behind the [`Echoing`] interface.
pub fn start_boxed<C: Client + 'static, S: Server>(
    pair: (C, S),
    cpus: Option<Cpus>,
) -> Box<dyn Echoing> {
    Box::new(Running::start_on(pair, cpus))
}

/// Messages streamed before the clock starts (caches and the sender's core warm).
pub const STREAM_WARMUP: u64 = 10_000;

/// Streams `n` messages from a sender thread (on `cpus.server`) to the calling
/// thread (on `cpus.client`) and returns the receiver's wall time for them.
///
/// The sender first sends [`STREAM_WARMUP`] messages that are received untimed;
/// the clock starts when the last of them has arrived and stops when the last of
/// the `n` timed ones has.
pub fn stream<S: Sender, R: Receiver>(
    (mut tx, mut rx): (S, R),
    cpus: Option<Cpus>,
    n: u64,
) -> Duration {
    if let Some(cpus) = cpus {
        pin_current_thread(cpus.client).expect("pin receiver thread");
    }
    let sender = std::thread::spawn(move || {
        if let Some(cpus) = cpus {
            pin_current_thread(cpus.server).expect("pin sender thread");
        }
        tx.send(1, STREAM_WARMUP + n);
    });
    rx.receive(1, STREAM_WARMUP);
    let start = Instant::now();
    rx.receive(1 + STREAM_WARMUP, n);
    let elapsed = start.elapsed();
    sender.join().expect("sender thread panicked");
    elapsed
}

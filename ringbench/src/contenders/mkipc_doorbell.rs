//! mkipc SPSC with doorbells: blocking round trips and a notified stream.
//!
//! A request ring and a reply ring in one region; each side publishes, then
//! rings the peer only if it announced a sleep (need-wakeup protocol), and waits
//! for its reply with spin-then-sleep. With a spin budget of 0 both sides sleep
//! whenever they wait (the fair comparison with an eventfd ping-pong, which
//! always sleeps); the `-spin` contender polls for the default budget first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mkipc::Region;
use mkipc::doorbell::{
    BlockingConsumer, Doorbell, NotifyStats, NotifyingProducer, RecvError, SpinPolicy, Waiter,
};
use mkipc::spsc::{ConsumeError, Geometry, ProduceError, RingLayout};
use mkipc_sys::linux::{EventFd, FutexDoorbell, FutexWaiter};

use super::echo::{ByteEnds, EchoClient, EchoServer};
use super::{BATCH, LARGE, Large, RTT_CAPACITY, STREAM_CAPACITY, check_large, message};
use crate::harness::{self, Cpus, Receiver, Sender};

/// A wait this long means a lost wake-up: the run fails loudly instead of hanging.
const LOST: Duration = Duration::from_secs(10);

const GEOMETRY: Geometry = Geometry::new(RTT_CAPACITY as u32, 48);
const STREAM_GEOMETRY: Geometry = Geometry::new(STREAM_CAPACITY as u32, LARGE as u32);

/// A doorbell kind: makes a connected (doorbell, waiter) pair, possibly on the
/// region word at `word`.
pub trait Backend {
    /// The ringing side.
    type Bell: Doorbell + Send + 'static;
    /// The sleeping side.
    type Wait: Waiter + Send + 'static;
    /// A connected pair.
    fn pair(region: &Region, word: usize) -> (Self::Bell, Self::Wait);
}

/// The shared futex on a region word.
pub struct Futex;

impl Backend for Futex {
    type Bell = FutexDoorbell;
    type Wait = FutexWaiter;
    fn pair(region: &Region, word: usize) -> (FutexDoorbell, FutexWaiter) {
        (
            FutexDoorbell::new(region.clone(), word).expect("futex word"),
            FutexWaiter::new(region.clone(), word).expect("futex word"),
        )
    }
}

/// One eventfd per direction.
pub struct Eventfd;

impl Backend for Eventfd {
    type Bell = EventFd;
    type Wait = EventFd;
    fn pair(_: &Region, _: usize) -> (EventFd, EventFd) {
        let e = EventFd::new().expect("eventfd");
        (e.try_clone().expect("dup eventfd"), e)
    }
}

/// One ring with its doorbell: the ends, given a ring at 0 of a region whose
/// doorbell word sits at `ring_size` (128 bytes, its own line).
fn ring<B: Backend>(
    geometry: Geometry,
    policy: SpinPolicy,
) -> (NotifyingProducer<B::Bell>, BlockingConsumer<B::Wait>) {
    let size = geometry.ring_size().expect("valid geometry");
    let region = Region::new_heap(size + 128);
    RingLayout::create(&region, 0, geometry).expect("ring");
    let (bell, wait) = B::pair(&region, size);
    (
        NotifyingProducer::attach(region.clone(), 0, bell).expect("producer"),
        BlockingConsumer::attach(region, 0, wait, policy).expect("consumer"),
    )
}

/// One side's ends: it publishes and rings on one ring, spins then sleeps on the
/// other.
pub struct DoorbellEnds<B: Backend> {
    tx: NotifyingProducer<B::Bell>,
    rx: BlockingConsumer<B::Wait>,
}

/// A connected echo pair whose receivers poll `spins` times before sleeping.
pub fn pair<B: Backend + 'static>(
    spins: u32,
) -> (EchoClient<DoorbellEnds<B>>, EchoServer<DoorbellEnds<B>>) {
    let policy = SpinPolicy::new(spins);
    let (req_tx, req_rx) = ring::<B>(GEOMETRY, policy);
    let (rep_tx, rep_rx) = ring::<B>(GEOMETRY, policy);
    (
        EchoClient(DoorbellEnds {
            tx: req_tx,
            rx: rep_rx,
        }),
        EchoServer(DoorbellEnds {
            tx: rep_tx,
            rx: req_rx,
        }),
    )
}

impl<B: Backend + 'static> ByteEnds for DoorbellEnds<B> {
    #[inline]
    fn send(&mut self, msg: &[u8]) {
        // A round trip keeps one message in flight: the ring is never full.
        self.tx
            .push(msg)
            .unwrap_or_else(|e| panic!("mkipc send: {e}"));
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> usize {
        match self.rx.recv(buf, LOST) {
            Ok(n) => n,
            Err(RecvError::TimedOut) => panic!("no message for {LOST:?}: a wake-up was lost"),
            Err(e) => panic!("mkipc receive: {e}"),
        }
    }
}

/// Streams in batches, committing each with one stamp pass and one notify; when
/// the ring is full it yields (the receiver is behind, not asleep).
pub struct DoorbellSender<B: Backend> {
    tx: NotifyingProducer<B::Bell>,
    stats: Arc<Mutex<NotifyStats>>,
}

/// Receives in batches, spin-then-sleep when the ring is empty.
pub struct DoorbellReceiver<B: Backend>(BlockingConsumer<B::Wait>);

/// A connected stream pair; the sender's doorbell counters land in the returned
/// cell when its `send` returns.
pub fn stream_pair<B: Backend>(
    spins: u32,
) -> (
    DoorbellSender<B>,
    DoorbellReceiver<B>,
    Arc<Mutex<NotifyStats>>,
) {
    let (tx, rx) = ring::<B>(STREAM_GEOMETRY, SpinPolicy::new(spins));
    let stats = Arc::new(Mutex::new(NotifyStats::default()));
    (
        DoorbellSender {
            tx,
            stats: stats.clone(),
        },
        DoorbellReceiver(rx),
        stats,
    )
}

impl<B: Backend + 'static> Sender for DoorbellSender<B> {
    fn send(&mut self, first: u64, n: u64) {
        let end = first + n;
        let mut seq = first;
        while seq < end {
            let want = (end - seq).min(BATCH as u64) as usize;
            let batch = match self.tx.producer().reserve(want) {
                Ok(batch) => batch,
                Err(ProduceError::Full) => {
                    std::thread::yield_now();
                    continue;
                }
                Err(e) => panic!("mkipc reserve: {e}"),
            };
            let len = batch.len();
            for i in 0..len {
                let msg: Large = message(seq + i as u64);
                batch.slot(i).write(&msg).expect("message fits its slot");
            }
            assert_eq!(batch.commit(len), len, "mkipc commit");
            self.tx.notify().expect("ring the receiver");
            seq += len as u64;
        }
        *self.stats.lock().unwrap() = self.tx.stats();
    }
}

impl<B: Backend> Receiver for DoorbellReceiver<B> {
    fn receive(&mut self, first: u64, n: u64) {
        let end = first + n;
        let mut seq = first;
        let mut buf = [0u8; LARGE];
        while seq < end {
            match self.0.wait(LOST) {
                Ok(()) => {}
                Err(RecvError::TimedOut) => panic!("stream stalled for {LOST:?}: lost wake-up"),
                Err(e) => panic!("mkipc wait: {e}"),
            }
            let want = (end - seq).min(BATCH as u64) as usize;
            let mut batch = match self.0.consumer().peek(want) {
                Ok(batch) => batch,
                Err(ConsumeError::Empty) => continue,
                Err(e) => panic!("mkipc peek: {e}"),
            };
            let len = batch.len();
            for i in 0..len {
                let view = batch.get(i).expect("published message");
                check_large(
                    view.copy_to(&mut buf).expect("message fits"),
                    seq + i as u64,
                );
            }
            batch.release(len);
            seq += len as u64;
        }
    }
}

/// Streams `n` messages (after the harness's warm-up) and returns the wall time
/// and the doorbells the sender rang per message sent (warm-up included).
pub fn stream_doorbells<B: Backend + 'static>(
    spins: u32,
    cpus: Option<Cpus>,
    n: u64,
) -> (Duration, f64, NotifyStats) {
    let (tx, rx, stats) = stream_pair::<B>(spins);
    let t = harness::stream((tx, rx), cpus, n);
    let stats = *stats.lock().unwrap();
    let messages = (n + harness::STREAM_WARMUP) as f64;
    (t, stats.rung as f64 / messages, stats)
}

//! Fan-in throughput: [`PRODUCERS`] sender threads into one receiver, every
//! message checked for its producer's order and for its payload.
//!
//! The senders run on one pinned core and the receiver on the other (the machine
//! has two), so the senders take turns: every contender uses the same back-off
//! when its queue is full ([`Backoff`]: a short spin, then a yield to the next
//! sender). [`FAN_IN`] lists the contenders; each has the same total capacity,
//! [`STREAM_CAPACITY`](super::STREAM_CAPACITY) slots.

use std::time::{Duration, Instant};

use mkipc_sys::linux::pin_current_thread;

use super::check_large;
use crate::harness::Cpus;

/// Producer threads feeding one receiver.
pub const PRODUCERS: usize = 4;

/// Messages streamed (in total) before the clock starts.
const WARMUP: u64 = 10_000;

/// The tag of message `n` of `producer`: the producer in the top 16 bits.
#[inline]
pub fn tag(producer: usize, n: u64) -> u64 {
    ((producer as u64) << 48) | n
}

/// Checks a received fan-in message: every word holds the same tag, and the tag
/// is its producer's next one. Returns the producer.
#[inline]
pub fn check_fan_in(buf: &[u8], next: &mut [u64; PRODUCERS]) -> usize {
    let word = u64::from_le_bytes(buf[..8].try_into().expect("a streamed message"));
    let producer = (word >> 48) as usize;
    assert!(
        producer < PRODUCERS,
        "message from unknown producer {producer}"
    );
    check_large(buf, tag(producer, next[producer]));
    next[producer] += 1;
    producer
}

/// What a sender does while its queue is full: spin briefly, then yield so
/// another sender sharing its core can run.
#[derive(Default)]
pub struct Backoff(u32);

impl Backoff {
    /// One wait step.
    #[inline]
    pub fn wait(&mut self) {
        if self.0 < 64 {
            self.0 += 1;
            std::hint::spin_loop();
        } else {
            self.0 = 0;
            std::thread::yield_now();
        }
    }

    /// Progress was made.
    #[inline]
    pub fn reset(&mut self) {
        self.0 = 0;
    }
}

/// One producer of a fan-in.
pub trait FanInSender: Send + 'static {
    /// Sends messages `tag(producer, first) ..` `tag(producer, first + n - 1)`.
    fn send(&mut self, first: u64, n: u64);
}

/// The receiver of a fan-in.
pub trait FanInReceiver {
    /// Receives `n` messages in total, checking each with [`check_fan_in`].
    fn receive(&mut self, n: u64, next: &mut [u64; PRODUCERS]);
}

/// Streams `n` messages (split evenly) from [`PRODUCERS`] sender threads (on
/// `cpus.server`) to the calling thread (on `cpus.client`); returns the
/// receiver's wall time for them, after an untimed warm-up.
pub fn run<S: FanInSender, R: FanInReceiver>(
    (senders, mut rx): (Vec<S>, R),
    cpus: Option<Cpus>,
    n: u64,
) -> Duration {
    assert_eq!(senders.len(), PRODUCERS);
    let per = n.div_ceil(PRODUCERS as u64);
    let warm = WARMUP / PRODUCERS as u64;
    if let Some(cpus) = cpus {
        pin_current_thread(cpus.client).expect("pin receiver thread");
    }
    let threads: Vec<_> = senders
        .into_iter()
        .map(|mut tx| {
            std::thread::spawn(move || {
                if let Some(cpus) = cpus {
                    pin_current_thread(cpus.server).expect("pin sender thread");
                }
                tx.send(0, warm + per);
            })
        })
        .collect();
    let mut next = [0u64; PRODUCERS];
    rx.receive(warm * PRODUCERS as u64, &mut next);
    let start = Instant::now();
    rx.receive(per * PRODUCERS as u64, &mut next);
    let elapsed = start.elapsed();
    for t in threads {
        t.join().expect("sender thread panicked");
    }
    assert_eq!(
        next,
        [warm + per; PRODUCERS],
        "every message of every producer"
    );
    elapsed
}

/// One fan-in contender.
pub struct FanIn {
    /// Name in tables and JSON.
    pub name: &'static str,
    /// Streams `n` [`LARGE`](super::LARGE)-byte messages from [`PRODUCERS`] threads; returns the
    /// receiver's wall time.
    pub run: fn(Option<Cpus>, u64) -> Duration,
}

/// The fan-in contenders; ratios are reported against crossbeam `ArrayQueue`.
pub static FAN_IN: &[FanIn] = &[
    FanIn {
        name: "mkipc-mpsc",
        run: |cpus, n| run(super::mkipc_mpsc::fan_in(), cpus, n),
    },
    FanIn {
        name: "crossbeam-arrayqueue",
        run: |cpus, n| run(arrayqueue::fan_in(), cpus, n),
    },
    FanIn {
        name: "crossbeam-channel",
        run: |cpus, n| run(channel::fan_in(), cpus, n),
    },
];

/// The contender every fan-in figure is compared with.
pub const BASELINE: &str = "crossbeam-arrayqueue";

mod arrayqueue {
    //! crossbeam `ArrayQueue` shared by every producer (it has no batch API).

    use std::sync::Arc;

    use crossbeam_queue::ArrayQueue;

    use super::super::{Large, STREAM_CAPACITY, message};
    use super::{Backoff, FanInReceiver, FanInSender, PRODUCERS, check_fan_in, tag};

    pub struct Tx(Arc<ArrayQueue<Large>>, usize);
    pub struct Rx(Arc<ArrayQueue<Large>>);

    pub fn fan_in() -> (Vec<Tx>, Rx) {
        let q = Arc::new(ArrayQueue::new(STREAM_CAPACITY));
        ((0..PRODUCERS).map(|p| Tx(q.clone(), p)).collect(), Rx(q))
    }

    impl FanInSender for Tx {
        fn send(&mut self, first: u64, n: u64) {
            let mut backoff = Backoff::default();
            for k in first..first + n {
                let mut msg: Large = message(tag(self.1, k));
                while let Err(back) = self.0.push(msg) {
                    msg = back;
                    backoff.wait();
                }
                backoff.reset();
            }
        }
    }

    impl FanInReceiver for Rx {
        fn receive(&mut self, n: u64, next: &mut [u64; PRODUCERS]) {
            for _ in 0..n {
                let msg = loop {
                    if let Some(msg) = self.0.pop() {
                        break msg;
                    }
                    std::hint::spin_loop();
                };
                check_fan_in(&msg, next);
            }
        }
    }
}

mod channel {
    //! crossbeam-channel, bounded, one `Sender` clone per producer.

    use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

    use super::super::{Large, STREAM_CAPACITY, message};
    use super::{Backoff, FanInReceiver, FanInSender, PRODUCERS, check_fan_in, tag};

    pub struct Tx(Sender<Large>, usize);
    pub struct Rx(Receiver<Large>);

    pub fn fan_in() -> (Vec<Tx>, Rx) {
        let (tx, rx) = bounded(STREAM_CAPACITY);
        ((0..PRODUCERS).map(|p| Tx(tx.clone(), p)).collect(), Rx(rx))
    }

    impl FanInSender for Tx {
        fn send(&mut self, first: u64, n: u64) {
            let mut backoff = Backoff::default();
            for k in first..first + n {
                let mut msg: Large = message(tag(self.1, k));
                loop {
                    match self.0.try_send(msg) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            msg = back;
                            backoff.wait();
                        }
                        Err(TrySendError::Disconnected(_)) => panic!("receiver gone"),
                    }
                }
                backoff.reset();
            }
        }
    }

    impl FanInReceiver for Rx {
        fn receive(&mut self, n: u64, next: &mut [u64; PRODUCERS]) {
            for _ in 0..n {
                check_fan_in(&self.0.recv().expect("senders alive"), next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fan-in contender delivers 20 000 checked messages from every
    /// producer (unpinned: tests share the machine).
    #[test]
    fn every_fan_in_contender_delivers_checked_messages() {
        assert_eq!(FAN_IN.iter().filter(|c| c.name == BASELINE).count(), 1);
        for c in FAN_IN {
            eprintln!("fan-in contender {}", c.name);
            (c.run)(None, 20_000);
        }
    }

    #[test]
    fn tags_name_their_producer_and_order() {
        let mut next = [0u64; PRODUCERS];
        let m: super::super::Large = super::super::message(tag(2, 0));
        assert_eq!(check_fan_in(&m, &mut next), 2);
        assert_eq!(next, [0, 0, 1, 0]);
        let again: super::super::Large = super::super::message(tag(2, 0));
        assert!(std::panic::catch_unwind(move || check_fan_in(&again, &mut next)).is_err());
    }
}

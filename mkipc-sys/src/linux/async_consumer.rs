//! An async SPSC consumer for tokio: it awaits the eventfd doorbell through
//! `AsyncFd` instead of blocking a thread. Same need-wakeup protocol as
//! [`BlockingConsumer`](mkipc::doorbell::BlockingConsumer): announce, full fence,
//! re-check, then await readability of the eventfd.

use std::fmt;
use std::io;
use std::time::Duration;

use mkipc::Region;
use mkipc::doorbell::WakeFlag;
use mkipc::spsc::{ConsumeError, Consumer, RingError};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::eventfd::EventFd;

/// Why [`AsyncConsumer::recv`] failed.
#[derive(Debug)]
pub enum AsyncRecvError {
    /// No message arrived within the timeout.
    TimedOut,
    /// The ring refused: buffer too small, or the producer broke it.
    Consume(ConsumeError),
    /// Waiting on the eventfd failed.
    Io(io::Error),
}

impl fmt::Display for AsyncRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncRecvError::TimedOut => write!(f, "no message arrived before the timeout"),
            AsyncRecvError::Consume(e) => write!(f, "{e}"),
            AsyncRecvError::Io(e) => write!(f, "waiting on the eventfd failed: {e}"),
        }
    }
}

impl std::error::Error for AsyncRecvError {}

/// The consumer of an SPSC ring, woken through an eventfd registered with tokio.
#[derive(Debug)]
pub struct AsyncConsumer {
    consumer: Consumer,
    flag: WakeFlag,
    bell: AsyncFd<EventFd>,
}

/// Withdraws the sleep announcement however the wait ends (a dropped future too).
struct Announced<'a>(&'a mut WakeFlag);

impl Drop for Announced<'_> {
    fn drop(&mut self) {
        self.0.disarm();
    }
}

impl AsyncConsumer {
    /// Attaches the consumer of the ring at `offset`, woken through `bell` (the
    /// producer rings a handle on the same eventfd). Call inside a tokio runtime.
    pub fn attach(region: Region, offset: usize, bell: EventFd) -> io::Result<Self> {
        let ring = |e: RingError| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        let consumer = Consumer::attach(region.clone(), offset).map_err(ring)?;
        let word = consumer.layout().need_wakeup_word();
        let flag = WakeFlag::new(region, word).map_err(|e| ring(e.into()))?;
        // SAFETY: `EventFd` owns its fd for its whole life and always returns that
        // same fd from `as_raw_fd`; the AsyncFd owns the `EventFd`.
        let bell =
            unsafe { AsyncFd::register_with_interest(bell, Interest::READABLE) }.map_err(|e| {
                let (_, e) = e.into_parts();
                io::Error::new(
                    e.kind(),
                    format!("cannot register the eventfd with tokio: {e}"),
                )
            })?;
        Ok(AsyncConsumer {
            consumer,
            flag,
            bell,
        })
    }

    /// Receives the next message into `buf`, waiting at most `timeout`.
    pub async fn recv(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, AsyncRecvError> {
        tokio::time::timeout(timeout, self.recv_forever(buf))
            .await
            .unwrap_or(Err(AsyncRecvError::TimedOut))
    }

    async fn recv_forever(&mut self, buf: &mut [u8]) -> Result<usize, AsyncRecvError> {
        loop {
            match self.consumer.pop(buf) {
                Err(ConsumeError::Empty) => {}
                done => return done.map_err(AsyncRecvError::Consume),
            }
            let announced = Announced(&mut self.flag);
            announced.0.arm();
            // The re-check after the announcement's fence (see `WakeFlag::arm`).
            match self.consumer.peek(1) {
                Ok(_) => continue,
                Err(ConsumeError::Empty) => {}
                Err(e) => return Err(AsyncRecvError::Consume(e)),
            }
            // A ring after the re-check leaves the eventfd readable, which epoll
            // reports to this registration whether we are awaiting yet or not.
            let mut ready = self.bell.readable().await.map_err(AsyncRecvError::Io)?;
            // Drains; on WouldBlock, try_io clears tokio's readiness so the next
            // await waits for a new ring.
            let _ = ready.try_io(|fd| match fd.get_ref().drain()? {
                0 => Err(io::ErrorKind::WouldBlock.into()),
                n => Ok(n),
            });
            drop(announced);
        }
    }

    /// The ring's consumer.
    pub fn consumer(&mut self) -> &mut Consumer {
        &mut self.consumer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkipc::doorbell::NotifyingProducer;
    use mkipc::spsc::{Geometry, RingLayout};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_receiver_is_woken_by_the_eventfd() {
        let g = Geometry::new(8, 16).compact();
        let region = Region::new_heap(g.ring_size().unwrap());
        RingLayout::create(&region, 0, g).unwrap();
        let bell = EventFd::new().unwrap();
        let mut tx =
            NotifyingProducer::attach(region.clone(), 0, bell.try_clone().unwrap()).unwrap();
        let mut rx = AsyncConsumer::attach(region, 0, bell).unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(
            rx.recv(&mut buf, Duration::from_millis(20)).await,
            Err(AsyncRecvError::TimedOut)
        ));
        let rounds = 2000u32;
        let sender = std::thread::spawn(move || {
            for i in 0..rounds {
                while let Err(e) = tx.push(&i.to_le_bytes()) {
                    assert!(
                        matches!(
                            e,
                            mkipc::doorbell::SendError::Produce(mkipc::spsc::ProduceError::Full)
                        ),
                        "{e}"
                    );
                    std::thread::yield_now();
                }
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            tx.stats()
        });
        for i in 0..rounds {
            let n = rx.recv(&mut buf, Duration::from_secs(10)).await.unwrap();
            assert_eq!(buf[..n], i.to_le_bytes());
        }
        let stats = sender.join().unwrap();
        assert!(
            stats.rung >= 1,
            "the receiver slept at least once: {stats:?}"
        );
    }
}

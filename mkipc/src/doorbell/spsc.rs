//! The need-wakeup protocol around the SPSC ring: a producer that rings only a
//! sleeping consumer, and a consumer that spins, then sleeps, with a timeout.

use core::fmt;
use core::time::Duration;

use super::protocol::{Notifier, NotifyStats, Sleeper, SpinPolicy, WaitError, WaitStats, WakeFlag};
use super::{Doorbell, Waiter};
use crate::shm::Region;
use crate::spsc::{ConsumeError, Consumer, ProduceError, Producer, RingError, RingLayout};

/// Why [`NotifyingProducer::push`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError<E> {
    /// The ring refused the message (nothing was published).
    Produce(ProduceError),
    /// The message was published but ringing the consumer failed.
    Doorbell(E),
}

impl<E: fmt::Display> fmt::Display for SendError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Produce(e) => write!(f, "{e}"),
            SendError::Doorbell(e) => write!(
                f,
                "message published, but ringing the consumer's doorbell failed: {e}"
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for SendError<E> {}

/// An SPSC producer that rings the consumer's doorbell when it sleeps.
#[derive(Debug)]
pub struct NotifyingProducer<D> {
    producer: Producer,
    notifier: Notifier<D>,
}

impl<D: Doorbell> NotifyingProducer<D> {
    /// Attaches the producer of the ring at `offset`, ringing `bell`.
    pub fn attach(region: Region, offset: usize, bell: D) -> Result<Self, RingError> {
        let producer = Producer::attach(region.clone(), offset)?;
        let word = producer.layout().need_wakeup_word();
        let notifier = Notifier::new(region, word, bell)?;
        Ok(NotifyingProducer { producer, notifier })
    }

    /// Copies `msg` into one slot, publishes it, rings the consumer if it sleeps.
    #[inline]
    pub fn push(&mut self, msg: &[u8]) -> Result<(), SendError<D::Error>> {
        self.producer.push(msg).map_err(SendError::Produce)?;
        self.notifier.notify().map_err(SendError::Doorbell)?;
        Ok(())
    }

    /// The ring's producer, for `reserve`/`commit` batches; call
    /// [`NotifyingProducer::notify`] after committing.
    pub fn producer(&mut self) -> &mut Producer {
        &mut self.producer
    }

    /// Rings the consumer if it announced a sleep (after a batch commit).
    #[inline]
    pub fn notify(&mut self) -> Result<bool, D::Error> {
        self.notifier.notify()
    }

    /// Rings the consumer whether it sleeps or not.
    pub fn ring(&mut self) -> Result<(), D::Error> {
        self.notifier.ring()
    }

    /// Doorbells rung and suppressed so far.
    pub fn stats(&self) -> NotifyStats {
        self.notifier.stats()
    }
}

/// Why [`BlockingConsumer::recv`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError<E> {
    /// No message arrived within the timeout.
    TimedOut,
    /// The ring refused: buffer too small, or the producer broke it.
    Consume(ConsumeError),
    /// The platform's waiter failed.
    Waiter(E),
}

impl<E: fmt::Display> fmt::Display for RecvError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::TimedOut => write!(f, "no message arrived before the timeout"),
            RecvError::Consume(e) => write!(f, "{e}"),
            RecvError::Waiter(e) => write!(f, "waiting for the doorbell failed: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for RecvError<E> {}

impl<E> From<WaitError<ConsumeError, E>> for RecvError<E> {
    fn from(e: WaitError<ConsumeError, E>) -> Self {
        match e {
            WaitError::TimedOut => RecvError::TimedOut,
            WaitError::Check(e) => RecvError::Consume(e),
            WaitError::Waiter(e) => RecvError::Waiter(e),
        }
    }
}

/// An SPSC consumer that spins, then sleeps until rung, with a timeout.
#[derive(Debug)]
pub struct BlockingConsumer<W> {
    consumer: Consumer,
    sleeper: Sleeper<W>,
}

impl<W: Waiter> BlockingConsumer<W> {
    /// Attaches the consumer of the ring at `offset`, sleeping in `waiter`.
    pub fn attach(
        region: Region,
        offset: usize,
        waiter: W,
        policy: SpinPolicy,
    ) -> Result<Self, RingError> {
        let consumer = Consumer::attach(region.clone(), offset)?;
        let flag = WakeFlag::new(region, consumer.layout().need_wakeup_word())?;
        Ok(BlockingConsumer {
            consumer,
            sleeper: Sleeper::new(flag, waiter, policy),
        })
    }

    /// Receives the next message into `buf` (returns its length), waiting at
    /// most `timeout` for one.
    #[inline]
    pub fn recv(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, RecvError<W::Error>> {
        match self.consumer.pop(buf) {
            Err(ConsumeError::Empty) => {}
            done => return done.map_err(RecvError::Consume),
        }
        self.wait(timeout)?;
        self.consumer.pop(buf).map_err(RecvError::Consume)
    }

    /// Waits at most `timeout` until a message is published (then read it with
    /// [`BlockingConsumer::consumer`]'s `peek` or `pop`).
    pub fn wait(&mut self, timeout: Duration) -> Result<(), RecvError<W::Error>> {
        let consumer = &mut self.consumer;
        self.sleeper
            .wait_until(|| has_message(consumer), timeout)
            .map_err(RecvError::from)
    }

    /// The ring's consumer.
    pub fn consumer(&mut self) -> &mut Consumer {
        &mut self.consumer
    }

    /// The ring's layout.
    pub fn layout(&self) -> &RingLayout {
        self.consumer.layout()
    }

    /// The spin budget.
    pub fn policy(&self) -> SpinPolicy {
        self.sleeper.policy()
    }

    /// Changes the spin budget.
    pub fn set_policy(&mut self, policy: SpinPolicy) {
        self.sleeper.set_policy(policy);
    }

    /// Spins, sleeps, wake-ups, spurious wake-ups and timeouts so far.
    pub fn stats(&self) -> WaitStats {
        self.sleeper.stats()
    }
}

/// "Is there work" for the SPSC ring: is the next slot published?
#[inline]
fn has_message(consumer: &mut Consumer) -> Result<bool, ConsumeError> {
    match consumer.peek(1) {
        Ok(_) => Ok(true),
        Err(ConsumeError::Empty) => Ok(false),
        Err(e) => Err(e),
    }
}

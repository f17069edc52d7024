//! crossbeam `ArrayQueue`: a bounded lock-free MPMC queue each way, polling; and
//! one queue streaming message by message (it has no batch API).

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::{
    Large, RTT_CAPACITY, STOP, STREAM_CAPACITY, Small, check, check_large, is_stop, message,
};
use crate::harness::{Client, Receiver, Sender, Server};

/// Pushes on the request queue, polls the reply queue.
pub struct QueueClient {
    req: Arc<ArrayQueue<Small>>,
    rep: Arc<ArrayQueue<Small>>,
}

/// Echoes from the request queue to the reply queue.
pub struct QueueServer {
    req: Arc<ArrayQueue<Small>>,
    rep: Arc<ArrayQueue<Small>>,
}

/// A connected echo pair.
pub fn pair() -> (QueueClient, QueueServer) {
    let req = Arc::new(ArrayQueue::new(RTT_CAPACITY));
    let rep = Arc::new(ArrayQueue::new(RTT_CAPACITY));
    (
        QueueClient {
            req: req.clone(),
            rep: rep.clone(),
        },
        QueueServer { req, rep },
    )
}

#[inline]
fn send<T>(q: &ArrayQueue<T>, mut msg: T) {
    while let Err(back) = q.push(msg) {
        msg = back;
        std::hint::spin_loop();
    }
}

#[inline]
fn recv<T>(q: &ArrayQueue<T>) -> T {
    loop {
        if let Some(msg) = q.pop() {
            return msg;
        }
        std::hint::spin_loop();
    }
}

impl Client for QueueClient {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        send(&self.req, message(seq));
        check(&recv(&self.rep), seq);
    }

    fn stop(&mut self) {
        send(&self.req, message(STOP));
    }
}

impl Server for QueueServer {
    fn serve(&mut self) {
        loop {
            let msg = recv(&self.req);
            if is_stop(&msg) {
                return;
            }
            send(&self.rep, msg);
        }
    }
}

/// Pushes streamed messages.
pub struct QueueSender(Arc<ArrayQueue<Large>>);

/// Pops streamed messages.
pub struct QueueReceiver(Arc<ArrayQueue<Large>>);

/// A connected stream pair.
pub fn stream_pair() -> (QueueSender, QueueReceiver) {
    let q = Arc::new(ArrayQueue::new(STREAM_CAPACITY));
    (QueueSender(q.clone()), QueueReceiver(q))
}

impl Sender for QueueSender {
    fn send(&mut self, first: u64, n: u64) {
        for seq in first..first + n {
            send(&self.0, message(seq));
        }
    }
}

impl Receiver for QueueReceiver {
    fn receive(&mut self, first: u64, n: u64) {
        for seq in first..first + n {
            check_large(&recv(&self.0), seq);
        }
    }
}

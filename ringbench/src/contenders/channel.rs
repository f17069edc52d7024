//! crossbeam-channel: a bounded channel each way, blocking `recv` (it spins
//! briefly, then parks the thread); and one channel streaming.

use crossbeam_channel::{Receiver as Rx, Sender as Tx, bounded};

use super::{
    Large, RTT_CAPACITY, STOP, STREAM_CAPACITY, Small, check, check_large, is_stop, message,
};
use crate::harness::{Client, Receiver, Sender, Server};

super::bounded_channel::bounded_channel_contender!();

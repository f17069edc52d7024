//! std `mpsc::sync_channel`: a bounded channel each way, blocking `recv` (it spins
//! briefly, then parks the thread); and one channel streaming.

use std::sync::mpsc::{Receiver as Rx, SyncSender as Tx, sync_channel as bounded};

use super::{
    Large, RTT_CAPACITY, STOP, STREAM_CAPACITY, Small, check, check_large, is_stop, message,
};
use crate::harness::{Client, Receiver, Sender, Server};

super::bounded_channel::bounded_channel_contender!();

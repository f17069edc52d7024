//! ringbench: mkipc measured side by side with the physical floor (a raw cache-line
//! ping-pong between the same two pinned cores) and with the IPC a user would pick
//! instead. Every figure is reported as a ratio to the floor measured in the same run.

pub mod cli;
pub mod clock;
pub mod contenders;
pub mod cross_process;
pub mod harness;
pub mod report;
pub mod stats;

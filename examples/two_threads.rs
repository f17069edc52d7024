//! Two threads on two pinned CPUs exchange checksummed messages through an SPSC
//! ring pair: requests one way, replies the other, then a streamed batch run.
//!
//! `cargo run --release -p mkipc-examples --example two_threads [MESSAGES]`

use std::process::ExitCode;
use std::time::Instant;

use mkipc::Region;
use mkipc::spsc::{self, ConsumeError, Consumer, Geometry, ProduceError, Producer};
use mkipc_sys::linux::{online_cpus, pin_current_thread};

const GEOMETRY: Geometry = Geometry::new(256, 48);

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn send(tx: &mut Producer, msg: &[u8]) -> Result<(), ProduceError> {
    loop {
        match tx.push(msg) {
            Err(ProduceError::Full) => std::hint::spin_loop(),
            other => return other,
        }
    }
}

fn recv(rx: &mut Consumer, buf: &mut [u8]) -> Result<usize, ConsumeError> {
    loop {
        match rx.pop(buf) {
            Err(ConsumeError::Empty) => std::hint::spin_loop(),
            other => return other,
        }
    }
}

/// Message `seq`: its number and a checksum of it, 16 bytes.
fn message(seq: u64) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    let sum = checksum(&m[..8]);
    m[8..].copy_from_slice(&sum.to_le_bytes());
    m
}

fn verify(seq: u64, m: &[u8]) -> Result<(), String> {
    if m.len() != 16 || m[..8] != seq.to_le_bytes() || m[8..] != checksum(&m[..8]).to_le_bytes() {
        return Err(format!("message {seq} arrived damaged or out of order"));
    }
    Ok(())
}

fn run(messages: u64) -> Result<(), String> {
    let ring = GEOMETRY.ring_size().map_err(|e| e.to_string())?;
    let region = Region::new_heap(2 * ring);
    let (mut req_tx, mut req_rx) =
        spsc::channel(&region, 0, GEOMETRY).map_err(|e| e.to_string())?;
    let (mut rep_tx, mut rep_rx) =
        spsc::channel(&region, ring, GEOMETRY).map_err(|e| e.to_string())?;
    let pin = online_cpus() >= 2;
    println!(
        "two-thread userspace SPSC demo: \
         {messages} round trips, then {messages} streamed messages, CPUs {}",
        if pin { "0 and 1" } else { "unpinned (one CPU)" }
    );
    let echo = std::thread::spawn(move || -> Result<(u64, u64), String> {
        if pin {
            pin_current_thread(1).map_err(|e| e.to_string())?;
        }
        let mut buf = [0u8; 48];
        for seq in 0..2 * messages {
            let n = recv(&mut req_rx, &mut buf).map_err(|e| e.to_string())?;
            verify(seq, &buf[..n])?;
            if seq < messages {
                send(&mut rep_tx, &buf[..n]).map_err(|e| e.to_string())?;
            }
        }
        Ok((req_rx.released(), req_rx.fault_count()))
    });
    if pin {
        pin_current_thread(0).map_err(|e| e.to_string())?;
    }
    let mut buf = [0u8; 48];
    let start = Instant::now();
    for seq in 0..messages {
        send(&mut req_tx, &message(seq)).map_err(|e| e.to_string())?;
        let n = recv(&mut rep_rx, &mut buf).map_err(|e| e.to_string())?;
        verify(seq, &buf[..n])?;
    }
    let rtt = start.elapsed();
    let start = Instant::now();
    for seq in messages..2 * messages {
        send(&mut req_tx, &message(seq)).map_err(|e| e.to_string())?;
    }
    let (received, faults) = echo
        .join()
        .map_err(|_| "echo thread panicked".to_string())??;
    let stream = start.elapsed();
    println!(
        "round trips: {messages} verified, mean {:.0} ns",
        rtt.as_nanos() as f64 / messages as f64
    );
    println!(
        "stream:      {messages} verified, {:.1} M messages/s",
        messages as f64 / stream.as_secs_f64() / 1e6
    );
    let faults = faults + rep_rx.fault_count() + req_tx.fault_count();
    println!(
        "summary: {received} of {} messages received in order with valid checksums, {faults} faults",
        2 * messages
    );
    if received != 2 * messages || faults != 0 {
        return Err("the run did not deliver every message cleanly".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let messages = match std::env::args().nth(1).map(|a| a.parse::<u64>()) {
        None => 1_000_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: two_threads [MESSAGES]  (MESSAGES: a positive number)");
            return ExitCode::from(2);
        }
    };
    match run(messages) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("two_threads: {e}");
            ExitCode::FAILURE
        }
    }
}

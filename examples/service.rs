//! A request/response service across two processes, one pinned process per role.
//!
//! `cargo run --release -p mkipc-examples --example service [REQUESTS]`
//!
//! The client (this process, pinned to CPU 0) creates a region file under
//! /dev/shm with two SPSC rings (requests, responses) and starts the server (this
//! same program with `serve REGION`, pinned to CPU 1). Each side sleeps on a
//! futex on the other's ring tail when idle (the need-wakeup protocol: a side is
//! rung only when it announced that it sleeps). The server answers each request
//! with its checksum; the client checks every answer and prints the round-trip
//! percentiles. To run the server by hand: `... --example service -- serve PATH`.

use std::fs::File;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use mkipc::Region;
use mkipc::doorbell::{BlockingConsumer, NotifyingProducer, SpinPolicy};
use mkipc::spsc::{Geometry, ProduceError, RingLayout};
use mkipc_sys::linux::{FutexWaiter, FutexWake, map_file, online_cpus, pin_current_thread};

const GEOMETRY: Geometry = Geometry::new(64, 48);
/// Request that tells the server to stop.
const QUIT: u64 = u64::MAX;
/// A peer that does not answer within this is reported, not waited for.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The checksum the server answers with.
fn checksum(n: u64) -> u64 {
    n.to_le_bytes().iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Offsets of the request ring and the response ring.
fn rings() -> Result<(usize, usize, usize), String> {
    let size = GEOMETRY.ring_size().map_err(|e| e.to_string())?;
    Ok((0, size, 2 * size))
}

/// One side: sends on ring `out`, receives on ring `inp`, sleeping on its tail.
struct Side {
    tx: NotifyingProducer<FutexWake>,
    rx: BlockingConsumer<FutexWaiter>,
}

impl Side {
    fn attach(region: &Region, out: usize, inp: usize) -> Result<Side, String> {
        let out_tail = RingLayout::read(region, out)
            .map_err(|e| e.to_string())?
            .tail_word();
        let in_tail = RingLayout::read(region, inp)
            .map_err(|e| e.to_string())?
            .tail_word();
        let bell = FutexWake::new(region.clone(), out_tail).map_err(|e| e.to_string())?;
        let waiter = FutexWaiter::new(region.clone(), in_tail).map_err(|e| e.to_string())?;
        Ok(Side {
            tx: NotifyingProducer::attach(region.clone(), out, bell).map_err(|e| e.to_string())?,
            rx: BlockingConsumer::attach(region.clone(), inp, waiter, SpinPolicy::default())
                .map_err(|e| e.to_string())?,
        })
    }

    fn send(&mut self, words: &[u64]) -> Result<(), String> {
        let mut msg = [0u8; 16];
        for (chunk, w) in msg.chunks_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        let start = Instant::now();
        loop {
            match self.tx.push(&msg[..8 * words.len()]) {
                Ok(()) => return Ok(()),
                Err(mkipc::doorbell::SendError::Produce(ProduceError::Full))
                    if start.elapsed() < TIMEOUT =>
                {
                    std::thread::yield_now()
                }
                Err(e) => return Err(format!("send failed: {e}")),
            }
        }
    }

    fn recv(&mut self) -> Result<[u64; 2], String> {
        let mut buf = [0u8; 48];
        let n = self
            .rx
            .recv(&mut buf, TIMEOUT)
            .map_err(|e| format!("no answer from the peer: {e}"))?;
        let word = |i: usize| {
            buf.get(8 * i..8 * i + 8)
                .filter(|_| n >= 8 * i + 8)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        };
        Ok([word(0), word(1)])
    }
}

fn pin(cpu: usize) {
    if online_cpus() > cpu
        && let Err(e) = pin_current_thread(cpu)
    {
        eprintln!("not pinned to CPU {cpu}: {e}");
    }
}

fn serve(path: &str) -> Result<(), String> {
    pin(1);
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    let (req, resp, len) = rings()?;
    let region = map_file(&file, len).map_err(|e| e.to_string())?;
    let mut side = Side::attach(&region, resp, req)?;
    let mut served = 0u64;
    loop {
        let [n, _] = side.recv()?;
        if n == QUIT {
            eprintln!("server: answered {served} requests");
            return Ok(());
        }
        side.send(&[n, checksum(n)])?;
        served += 1;
    }
}

fn client(requests: u64) -> Result<(), String> {
    let path = format!("/dev/shm/mkipc-service-{}", std::process::id());
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot create {path}: {e}"))?;
    let (req, resp, len) = rings()?;
    let region = map_file(&file, len).map_err(|e| e.to_string())?;
    RingLayout::create(&region, req, GEOMETRY).map_err(|e| e.to_string())?;
    RingLayout::create(&region, resp, GEOMETRY).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut server = Command::new(exe)
        .args(["serve", &path])
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    pin(0);
    let result = (|| {
        let mut side = Side::attach(&region, req, resp)?;
        let mut times = Vec::with_capacity(requests as usize);
        for n in 0..requests {
            let t = Instant::now();
            side.send(&[n])?;
            let [echo, sum] = side.recv()?;
            times.push(t.elapsed());
            if echo != n || sum != checksum(n) {
                return Err(format!("request {n}: wrong answer ({echo}, {sum:#x})"));
            }
        }
        side.send(&[QUIT])?;
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "client: {requests} requests answered and verified; round trip p50 {:?}, p99 {:?}",
            at(0.5),
            at(0.99)
        );
        Ok(())
    })();
    let status = server.wait().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&path);
    result?;
    if !status.success() {
        return Err(format!("the server failed: {status}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, path] if cmd == "serve" => serve(path),
        [] => client(100_000),
        [n] => match n.parse() {
            Ok(n) if n > 0 => client(n),
            _ => Err(format!(
                "usage: service [REQUESTS] | service serve PATH (got {n:?})"
            )),
        },
        _ => Err("usage: service [REQUESTS] | service serve PATH".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}

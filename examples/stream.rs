//! Zero-copy streaming between two processes through the buffer pool.
//!
//! `cargo run --release -p mkipc-examples --example stream [FILE]`
//!
//! This process (the sender) creates a region file under /dev/shm holding a
//! buffer pool and starts the receiver (this program with `receive REGION`). It
//! streams FILE (or 64 MiB of generated frames) in 64 KiB chunks: it loans a
//! buffer, reads or generates the chunk straight into it, and sends only
//! `(offset, length)`. The receiver reads each buffer in place (a checksum over
//! its words, no copy), gives it back, and prints its total; the sender checks
//! that it matches its own and prints the throughput.

use std::fs::File;
use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use mkipc::MessageType;
use mkipc::pool::{PoolGeometry, PoolLayout, PoolReceiver, PoolSender, RecvError, SendError};
use mkipc_sys::linux::{map_file, online_cpus, pin_current_thread};

const CHUNK: u32 = 64 * 1024;
const BUFFERS: u32 = 16;
const GEOMETRY: PoolGeometry = PoolGeometry::new(BUFFERS, CHUNK);
const GENERATED: u64 = 64 << 20;
const TIMEOUT: Duration = Duration::from_secs(5);
/// A zero-length message ends the stream.
const END: usize = 0;

/// The checksum both sides compute, over little-endian words (the tail of a
/// chunk zero-padded to a word).
fn fold(sum: u64, word: u64) -> u64 {
    (sum ^ word)
        .wrapping_mul(0x0000_0100_0000_01b3)
        .rotate_left(7)
}

fn pin(cpu: usize) {
    if online_cpus() > cpu {
        let _ = pin_current_thread(cpu);
    }
}

fn receive(path: &str) -> Result<(), String> {
    pin(1);
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    let size = GEOMETRY.pool_size().map_err(|e| e.to_string())?;
    let region = map_file(&file, size).map_err(|e| e.to_string())?;
    let mut rx = PoolReceiver::attach(region, 0).map_err(|e| e.to_string())?;
    let (mut sum, mut bytes) = (0xcbf2_9ce4_8422_2325u64, 0u64);
    let mut idle = Instant::now();
    loop {
        match rx.recv() {
            Ok(held) => {
                let view = rx.view(&held);
                if view.len() == END {
                    rx.give_back(held).map_err(|e| e.to_string())?;
                    break;
                }
                bytes += view.len() as u64;
                sum = view.fold_words(sum, fold).map_err(|e| e.to_string())?;
                rx.give_back(held).map_err(|e| e.to_string())?;
                idle = Instant::now();
            }
            Err(RecvError::Empty) if idle.elapsed() < TIMEOUT => std::thread::yield_now(),
            Err(e) => return Err(format!("receive failed: {e}")),
        }
    }
    println!("{bytes} {sum:#x}");
    Ok(())
}

/// Fills a loaned buffer with the next chunk of `input` (or a generated frame).
fn next_chunk(
    tx: &PoolSender,
    loan: &mkipc::pool::Loan,
    input: &mut Option<File>,
    sent: u64,
    scratch: &mut [u8],
) -> Result<usize, String> {
    let len = match input {
        Some(f) => {
            let mut n = 0;
            while n < scratch.len() {
                match f.read(&mut scratch[n..]).map_err(|e| e.to_string())? {
                    0 => break,
                    k => n += k,
                }
            }
            n
        }
        None => {
            let n = (GENERATED - sent).min(u64::from(CHUNK)) as usize;
            for (i, b) in scratch[..n].iter_mut().enumerate() {
                *b = ((sent as usize + i) * 31 % 251) as u8;
            }
            n
        }
    };
    tx.writer(loan)
        .write_at(0, &scratch[..len])
        .map_err(|e| e.to_string())?;
    Ok(len)
}

fn stream(input: Option<String>) -> Result<(), String> {
    let mut input = match input {
        Some(p) => Some(File::open(&p).map_err(|e| format!("cannot open {p}: {e}"))?),
        None => None,
    };
    let path = format!("/dev/shm/mkipc-stream-{}", std::process::id());
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot create {path}: {e}"))?;
    let size = GEOMETRY.pool_size().map_err(|e| e.to_string())?;
    let region = map_file(&file, size).map_err(|e| e.to_string())?;
    PoolLayout::create(&region, 0, GEOMETRY, MessageType::bytes(CHUNK))
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = Command::new(exe)
        .args(["receive", &path])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the receiver: {e}"))?;
    pin(0);
    let result = (|| {
        let mut tx = PoolSender::attach(region.clone(), 0).map_err(|e| e.to_string())?;
        let mut scratch = vec![0u8; CHUNK as usize];
        let (mut sum, mut sent) = (0xcbf2_9ce4_8422_2325u64, 0u64);
        let start = Instant::now();
        loop {
            let waited = Instant::now();
            let loan = loop {
                match tx.loan() {
                    Ok(l) => break l,
                    Err(SendError::NoBuffer) if waited.elapsed() < TIMEOUT => {
                        std::thread::yield_now()
                    }
                    Err(e) => return Err(format!("no buffer came back: {e}")),
                }
            };
            let len = next_chunk(&tx, &loan, &mut input, sent, &mut scratch)?;
            // Our own checksum over the same words the receiver folds.
            for w in scratch[..len].chunks(8) {
                let mut word = [0u8; 8];
                word[..w.len()].copy_from_slice(w);
                sum = fold(sum, u64::from_le_bytes(word));
            }
            let mut loan = loan;
            loop {
                match tx.send(loan, len) {
                    Ok(()) => break,
                    Err(f) if f.error == SendError::Full && waited.elapsed() < TIMEOUT => {
                        loan = f.loan;
                        tx.collect().map_err(|e| e.to_string())?;
                        std::thread::yield_now();
                    }
                    Err(f) => return Err(format!("send failed: {}", f.error)),
                }
            }
            sent += len as u64;
            if len == END {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        Ok((sent, sum, secs))
    })();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&path);
    let (sent, sum, secs) = result?;
    let reply = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || reply != format!("{sent} {sum:#x}") {
        return Err(format!(
            "the receiver saw {reply:?} ({}), the sender sent {sent} {sum:#x}",
            out.status
        ));
    }
    println!(
        "streamed {sent} bytes in {CHUNK}-byte buffers, zero-copy, checksums match; {:.0} MB/s",
        sent as f64 / secs / 1e6
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, path] if cmd == "receive" => receive(path),
        [] => stream(None),
        [file] => stream(Some(file.clone())),
        _ => Err("usage: stream [FILE] | stream receive PATH".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stream: {e}");
            ExitCode::FAILURE
        }
    }
}

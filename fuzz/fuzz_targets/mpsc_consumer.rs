//! A hostile producer on one lane of an MPSC channel: the input scripts pushes by
//! correct producers on every lane interleaved with arbitrary writes into the
//! channel's words; the consumer must only return messages that fit, `Empty`, or
//! a lane fault reported once, and it must keep serving the lanes nobody broke.

#![no_main]

use core::sync::atomic::Ordering;

use libfuzzer_sys::fuzz_target;
use mkipc::Region;
use mkipc::mpsc::{self, Geometry, Producer, RecvError};

const LANES: u32 = 3;
const SLOT: usize = 24;

fuzz_target!(|data: &[u8]| {
    let geometry = Geometry::new(LANES, 4, SLOT as u32).compact();
    let Ok(size) = geometry.channel_size() else {
        return;
    };
    let region = Region::new_heap(size);
    let Ok(mut rx) = mpsc::channel(&region, 0, geometry) else {
        return;
    };
    let mut producers: Vec<Option<Producer>> = (0..LANES as usize)
        .map(|lane| Producer::attach(region.clone(), 0, lane).ok())
        .collect();
    let mut buf = [0u8; SLOT];
    let mut broken = 0u64;
    for op in data.chunks(9) {
        let (&kind, arg) = op.split_first().unwrap_or((&0, &[]));
        let lane = usize::from(kind >> 4) % LANES as usize;
        match kind % 5 {
            0 => {
                if let Some(p) = producers[lane].as_mut() {
                    let _ = p.push(&arg[..arg.len().min(SLOT)]);
                }
            }
            1 if arg.len() == 8 => {
                // Scribble anywhere in the channel: the word from the first byte.
                let word = usize::from(arg[0]) * 64 % size / 8 * 8;
                let value = u64::from_le_bytes(arg.try_into().unwrap_or_default());
                let _ = region.store(word, value, Ordering::Relaxed);
            }
            2 => match rx.pop(&mut buf) {
                Ok(r) => {
                    assert!(r.len <= SLOT && r.lane < LANES as usize);
                    assert_eq!(broken & 1 << r.lane, 0, "a faulted lane was served");
                }
                Err(RecvError::LaneBroken { lane, .. }) => {
                    assert_eq!(broken & 1 << lane, 0, "a lane fault is reported once");
                    broken |= 1 << lane;
                }
                Err(_) => {}
            },
            3 => {
                // Recovery: fence, drain what is left, reset, re-attach.
                if rx.fence_lane(lane).is_ok() {
                    while matches!(rx.is_drained(lane), Ok(false)) {
                        if rx.pop(&mut buf).is_err() {
                            break;
                        }
                    }
                    if rx.reset_lane(lane).is_ok() {
                        broken &= !(1 << lane);
                        producers[lane] = Producer::attach(region.clone(), 0, lane).ok();
                    }
                }
            }
            _ => {
                if let Ok(again) = mpsc::Consumer::attach(region.clone(), 0) {
                    rx = again;
                    broken = 0;
                }
            }
        }
    }
});

//! The C ABI called from Rust: statuses for bad handles and bad arguments, and a
//! hostile peer turning into `BROKEN` with a counted fault, never a panic.

#![cfg(feature = "capi")]

use core::ptr::{null, null_mut};
use std::ffi::CStr;

use mkipc::Region;
use mkipc::spsc::RingLayout;
use mkipc_sys::capi::Status;
use mkipc_sys::capi::channel::*;
use mkipc_sys::capi::region::*;
use mkipc_sys::capi::ring::*;
use mkipc_sys::capi::status::mkipc_status_str;

const OK: i32 = Status::Ok as i32;

fn zeroed<T>() -> Box<T> {
    // SAFETY: the handle structs are arrays of u64; all-zero is their initial state.
    Box::new(unsafe { core::mem::zeroed() })
}

#[test]
fn every_status_has_a_distinct_description() {
    let mut seen = std::collections::HashSet::new();
    for code in -29..=0 {
        let status = Status::from_code(code).unwrap();
        assert_eq!(status as i32, code);
        // SAFETY: mkipc_status_str returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(mkipc_status_str(code)) };
        assert!(seen.insert(text.to_owned()), "{code} repeats {text:?}");
    }
    assert_eq!(Status::from_code(1), None);
    assert_eq!(Status::from_code(-30), None);
    // SAFETY: as above.
    let unknown = unsafe { CStr::from_ptr(mkipc_status_str(-99)) };
    assert_eq!(unknown.to_str().unwrap(), "unknown mkipc status");
}

#[test]
fn null_unopened_closed_and_reused_handles_are_refused() {
    let mut memory = vec![0u64; 4096];
    let mut region = zeroed::<MkipcRegion>();
    let len = memory.len() * 8;
    // SAFETY: every pointer below is live, zero-initialised storage, the test's
    // memory (which outlives every handle), or null.
    unsafe {
        assert_eq!(mkipc_region_len(&*region, &mut 0), Status::BadHandle as i32);
        assert_eq!(
            mkipc_region_from_memory(null_mut(), memory.as_mut_ptr().cast(), len),
            Status::Null as i32
        );
        assert_eq!(
            mkipc_region_from_memory(&mut *region, memory.as_mut_ptr().cast(), len - 4),
            Status::InvalidArgument as i32
        );
        assert_eq!(
            mkipc_region_from_memory(&mut *region, memory.as_mut_ptr().cast(), len),
            OK
        );
        assert_eq!(
            mkipc_region_from_memory(&mut *region, memory.as_mut_ptr().cast(), len),
            Status::InUse as i32
        );
        let mut got = 0;
        assert_eq!(mkipc_region_len(&*region, &mut got), OK);
        assert_eq!(got, len);
        assert_eq!(mkipc_region_len(&*region, null_mut()), Status::Null as i32);
        let misaligned = (&raw const *region).cast::<u8>().wrapping_add(4).cast();
        assert_eq!(
            mkipc_region_len(misaligned, &mut got),
            Status::BadHandle as i32
        );

        let mut producer = zeroed::<MkipcProducer>();
        assert_eq!(
            mkipc_producer_attach(&mut *producer, &*region, 4096),
            Status::NotInitialized as i32
        );
        assert_eq!(
            mkipc_ring_create(&*region, 4096 + 8, 8, 56, 0),
            Status::InvalidArgument as i32
        );
        assert_eq!(
            mkipc_ring_create(&*region, 4096, 8, 56, 1 << 7),
            Status::InvalidArgument as i32
        );
        assert_eq!(
            mkipc_ring_create(&*region, 4096, 8, 56, MKIPC_LAYOUT_COMPACT),
            OK
        );
        assert_eq!(mkipc_producer_attach(&mut *producer, &*region, 4096), OK);
        assert_eq!(
            mkipc_producer_push(&mut *producer, null(), 3),
            Status::Null as i32
        );
        assert_eq!(mkipc_producer_push(&mut *producer, null(), 0), OK);
        assert_eq!(mkipc_producer_close(&mut *producer), OK);
        assert_eq!(
            mkipc_producer_close(&mut *producer),
            Status::BadHandle as i32
        );
        assert_eq!(
            mkipc_producer_push(&mut *producer, b"x".as_ptr(), 1),
            Status::BadHandle as i32
        );
        assert_eq!(
            mkipc_producer_push(null_mut(), b"x".as_ptr(), 1),
            Status::Null as i32
        );

        let mut sender = zeroed::<MkipcSender>();
        assert_eq!(
            mkipc_sender_attach(&mut *sender, &*region, 4096),
            Status::Incompatible as i32
        );
        assert_eq!(mkipc_region_close(&mut *region), OK);
        assert_eq!(
            mkipc_sender_attach(&mut *sender, &*region, 4096),
            Status::BadHandle as i32
        );
    }
}

/// A Rust handle on the same memory, to act as the peer (or a hostile one).
fn peer_view(memory: &mut [u64]) -> Region {
    // SAFETY: the vector outlives the returned region in every test below, and
    // all access goes through `Region`'s whole-word atomics, as mkipc's does.
    unsafe { Region::from_raw_parts(memory.as_mut_ptr().cast(), memory.len() * 8) }.unwrap()
}

#[test]
fn a_typed_rust_channel_is_refused_as_a_byte_channel() {
    let g = mkipc::pool::PoolGeometry::new(4, 64).compact();
    let mut memory = vec![0u64; 2 * 4096];
    let len = memory.len() * 8;
    let base = memory.as_mut_ptr().cast();
    let peer = peer_view(&mut memory);
    mkipc::typed::create::<u64>(&peer, 0, g).unwrap();
    let mut region = zeroed::<MkipcRegion>();
    let mut sender = zeroed::<MkipcSender>();
    let mut receiver = zeroed::<MkipcReceiver>();
    // SAFETY: live storage and memory; the memory outlives every handle.
    unsafe {
        assert_eq!(mkipc_region_from_memory(&mut *region, base, len), OK);
        assert_eq!(
            mkipc_sender_attach(&mut *sender, &*region, 0),
            Status::TypeMismatch as i32
        );
        assert_eq!(
            mkipc_receiver_attach(&mut *receiver, &*region, 0),
            Status::TypeMismatch as i32
        );
        assert_eq!(mkipc_region_close(&mut *region), OK);
    }
}

#[test]
fn a_hostile_consumer_index_latches_the_producer_broken() {
    let mut memory = vec![0u64; 4096];
    let len = memory.len() * 8;
    let base = memory.as_mut_ptr().cast();
    let peer = peer_view(&mut memory);
    let mut region = zeroed::<MkipcRegion>();
    let mut producer = zeroed::<MkipcProducer>();
    // SAFETY: live storage and memory; the memory outlives every handle.
    unsafe {
        assert_eq!(mkipc_region_from_memory(&mut *region, base, len), OK);
        assert_eq!(
            mkipc_ring_create(&*region, 128, 8, 56, MKIPC_LAYOUT_COMPACT),
            OK
        );
        assert_eq!(mkipc_producer_attach(&mut *producer, &*region, 128), OK);
        for _ in 0..8 {
            assert_eq!(mkipc_producer_push(&mut *producer, b"msg".as_ptr(), 3), OK);
        }
        assert_eq!(
            mkipc_producer_push(&mut *producer, b"msg".as_ptr(), 3),
            Status::Full as i32
        );
        // The peer claims to have released messages never published.
        let ring = RingLayout::read(&peer, 128).unwrap();
        peer.store(
            ring.head_word(),
            1 << 40,
            core::sync::atomic::Ordering::Release,
        )
        .unwrap();
        assert_eq!(
            mkipc_producer_push(&mut *producer, b"msg".as_ptr(), 3),
            Status::Broken as i32
        );
        assert_eq!(
            mkipc_producer_push(&mut *producer, b"msg".as_ptr(), 3),
            Status::Broken as i32,
            "latched"
        );
        let mut faults = 0;
        assert_eq!(mkipc_producer_fault_count(&mut *producer, &mut faults), OK);
        assert_eq!(faults, 1);
        assert_eq!(mkipc_producer_close(&mut *producer), OK);
        assert_eq!(mkipc_region_close(&mut *region), OK);
    }
}

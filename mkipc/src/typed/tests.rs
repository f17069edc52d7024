use super::*;
use crate::pool::PoolGeometry;
use alloc::vec;
use alloc::vec::Vec;

#[derive(Debug, Clone, Copy, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Point {
    x: u64,
    y: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Big {
    seq: u64,
    body: [u64; 100],
}

fn geometry() -> PoolGeometry {
    PoolGeometry::new(4, 256).compact()
}

#[test]
fn small_values_go_inline_big_ones_through_buffers() {
    let region = Region::new_heap(2 * geometry().pool_size().unwrap());
    let (mut tx, mut rx) = channel::<Point>(&region, 0, geometry()).unwrap();
    tx.send(&Point { x: 1, y: 2 }).unwrap();
    assert_eq!(rx.recv().unwrap(), Point { x: 1, y: 2 });
    assert_eq!(tx.max_message_size(), 1024);
    let at = geometry().pool_size().unwrap();
    let (mut tx, mut rx) = channel::<Big>(&region, at, geometry()).unwrap();
    let big = Big {
        seq: 9,
        body: core::array::from_fn(|i| i as u64),
    };
    for _ in 0..10 {
        tx.send(&big).unwrap(); // 808 bytes: four buffers
        assert_eq!(rx.recv().unwrap(), big);
    }
    assert_eq!(rx.recv(), Err(RecvError::Empty));
}

#[test]
fn type_mismatch_is_refused_at_attach() {
    let region = Region::new_heap(geometry().pool_size().unwrap());
    create::<Point>(&region, 0, geometry()).unwrap();
    let err = Receiver::<[u64; 2]>::attach(region.clone(), 0).unwrap_err();
    assert_eq!(
        err,
        ChannelError::TypeMismatch {
            expected: MessageType::of::<[u64; 2]>(),
            found: MessageType::of::<Point>(),
        }
    );
    assert!(matches!(
        Sender::<u32>::attach(region.clone(), 0),
        Err(ChannelError::TypeMismatch { .. })
    ));
    assert!(matches!(
        ByteReceiver::attach(region.clone(), 0),
        Err(ChannelError::TypeMismatch { .. })
    ));
    assert!(Receiver::<Point>::attach(region, 0).is_ok());
}

#[test]
fn oversized_types_are_refused_at_create() {
    let region = Region::new_heap(geometry().pool_size().unwrap());
    let g = PoolGeometry::new(2, 256).compact();
    assert_eq!(
        create::<Big>(&region, 0, g),
        Err(ChannelError::TooLarge {
            size: 808,
            max: 512
        })
    );
}

#[test]
fn byte_channel_carries_any_length_and_reports_its_maximum() {
    let region = Region::new_heap(geometry().pool_size().unwrap());
    let (mut tx, mut rx) = byte_channel(&region, 0, geometry()).unwrap();
    assert_eq!(tx.max_message_size(), 1024);
    assert_eq!(rx.max_message_size(), 1024);
    let mut buf = vec![0u8; 1024];
    for len in [0usize, 3, 48, 300, 1024] {
        let msg: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
        tx.send_bytes(&msg).unwrap();
        assert_eq!(rx.recv_bytes(&mut buf).unwrap(), len);
        assert_eq!(&buf[..len], &msg[..]);
    }
    assert!(Sender::<Point>::attach(region, 0).is_err());
}

#[test]
fn a_message_of_the_wrong_length_latches_a_fault() {
    let region = Region::new_heap(geometry().pool_size().unwrap());
    create::<Point>(&region, 0, geometry()).unwrap();
    // A hostile sender ignores the type and sends 5 bytes.
    let mut raw = crate::pool::PoolSender::attach(region.clone(), 0).unwrap();
    let mut rx = Receiver::<Point>::attach(region, 0).unwrap();
    raw.send_bytes(&[1, 2, 3, 4, 5]).unwrap();
    let err = rx.recv().unwrap_err();
    assert!(matches!(
        err,
        RecvError::Broken(Fault::BadLength { found: 5, .. })
    ));
    assert_eq!(rx.recv(), Err(err), "latched");
}

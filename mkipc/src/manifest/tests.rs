use super::*;
use crate::layout::PAGE;
use crate::shm::Region;
use crate::spsc::{self, Geometry};
use crate::sync::Ordering;
use core::mem::offset_of;

const NODES: [NodeSpec<'static>; 2] = [
    NodeSpec {
        id: 10,
        name: "kernel0",
    },
    NodeSpec {
        id: 20,
        name: "kernel1",
    },
];

fn channels() -> [ChannelSpec<'static>; 3] {
    [
        ChannelSpec::spsc("ping", Geometry::new(4, 16)),
        ChannelSpec::spsc("pong", Geometry::new(8, 32)),
        ChannelSpec {
            name: "events",
            kind: ChannelKind::Mpsc,
            geometry: Geometry::new(8, 64),
            max_producers: 2,
            max_message: 64,
            message_type: crate::MessageType::bytes(64),
            size: 8192,
        },
    ]
}

const GRANTS: [GrantSpec<'static>; 5] = [
    GrantSpec {
        node: 10,
        channel: "ping",
        end: End::Producer,
        rights: Rights::SEND,
    },
    GrantSpec {
        node: 20,
        channel: "ping",
        end: End::Consumer,
        rights: Rights::RECEIVE,
    },
    GrantSpec {
        node: 20,
        channel: "pong",
        end: End::Producer,
        rights: Rights::SEND,
    },
    GrantSpec {
        node: 10,
        channel: "pong",
        end: End::Consumer,
        rights: Rights::RECEIVE,
    },
    GrantSpec {
        node: 10,
        channel: "events",
        end: End::Producer,
        rights: Rights::SEND,
    },
];

fn built() -> (Region, Manifest) {
    let ch = channels();
    let b = ManifestBuilder::new(&NODES, &ch, &GRANTS);
    let region = Region::new_heap(b.required_size().unwrap());
    let m = b.write(&region, 1).unwrap();
    (region, m)
}

/// Rewrites the checksum so that a table edit reaches the per-entry checks (if
/// the header's counts still describe a possible layout).
pub(crate) fn reseal(region: &Region) {
    let h = MANIFEST_OFFSET;
    let w1 = region.load(h + 8, Ordering::Relaxed).unwrap();
    let w2 = region.load(h + 16, Ordering::Relaxed).unwrap();
    let w3 = region.load(h + 24, Ordering::Relaxed).unwrap();
    let Some(t) = Tables::new(
        w1 as u32,
        (w1 >> 32) as u32,
        w2 as u32,
        (w2 >> 32) as u32,
        w3 as u32,
    ) else {
        return;
    };
    if t.end > region.len() {
        return;
    }
    let sum = checksum(region, t.nodes..t.end).unwrap();
    region
        .store(
            h + offset_of!(ManifestHeader, checksum),
            sum,
            Ordering::Relaxed,
        )
        .unwrap();
}

#[test]
fn builds_reads_back_and_looks_up() {
    let (region, m) = built();
    assert_eq!(
        (m.node_count(), m.channel_count(), m.grant_count()),
        (2, 3, 5)
    );
    let ping = m.find_channel("ping").unwrap();
    assert_eq!(ping.kind, ChannelKind::Spsc);
    assert_eq!(ping.geometry, Geometry::new(4, 16));
    assert!(ping.offset.is_multiple_of(PAGE));
    assert_eq!(m.find_channel("nope"), Err(ManifestError::NoSuchChannel));
    assert_eq!(m.find_node(20).unwrap().name.as_str(), "kernel1");
    assert_eq!(m.find_node(3), Err(ManifestError::NoSuchNode { id: 3 }));
    assert_eq!(
        m.find_node_named("kernel1").unwrap().map(|n| n.id),
        Some(20)
    );
    assert_eq!(m.find_node_named("kernel9").unwrap(), None);
    // The ring is formatted and usable.
    let (mut tx, mut rx) = (
        spsc::Producer::attach(region.clone(), ping.offset).unwrap(),
        spsc::Consumer::attach(region.clone(), ping.offset).unwrap(),
    );
    tx.push(b"hi").unwrap();
    assert_eq!(rx.pop(&mut [0; 16]), Ok(2));
    // Node sections are page-aligned, one page each here, and each end block lies
    // in its holder's section.
    for i in 0..2 {
        let s = m.node_section(i).unwrap();
        assert!(s.start.is_multiple_of(PAGE) && s.len() == PAGE);
    }
    for i in 0..m.grant_count() {
        let g = m.grant(i).unwrap();
        assert!(m.node_section(g.node).unwrap().contains(&g.end_block));
    }
    let a = m.grant_of(0, 1, End::Consumer).unwrap().unwrap();
    let b = m.grant_of(0, 0, End::Producer).unwrap().unwrap();
    assert_ne!(a.end_block, b.end_block);
    assert_eq!(m.grant_of(1, 0, End::Producer).unwrap(), None);
}

#[test]
fn builder_refuses_bad_specs() {
    let ch = channels();
    let dup = [NODES[0], NodeSpec { id: 10, name: "x" }];
    assert_eq!(
        ManifestBuilder::new(&dup, &ch, &[]).required_size(),
        Err(BuildError::Duplicate {
            what: "node id",
            index: 1
        })
    );
    let bad = [GrantSpec {
        node: 99,
        ..GRANTS[0]
    }];
    assert!(matches!(
        ManifestBuilder::new(&NODES, &ch, &bad).required_size(),
        Err(BuildError::UnknownNode { id: 99, .. })
    ));
    let wrong = [GrantSpec {
        rights: Rights::RECEIVE,
        ..GRANTS[0]
    }];
    assert_eq!(
        ManifestBuilder::new(&NODES, &ch, &wrong).required_size(),
        Err(BuildError::BadGrant { grant: 0 })
    );
    let two = [
        GRANTS[0],
        GrantSpec {
            node: 20,
            ..GRANTS[0]
        },
    ];
    assert_eq!(
        ManifestBuilder::new(&NODES, &ch, &two).required_size(),
        Err(BuildError::BadGrant { grant: 1 })
    );
    let named = [NodeSpec {
        id: 1,
        name: "has space",
    }];
    assert!(matches!(
        ManifestBuilder::new(&named, &[], &[]).required_size(),
        Err(BuildError::BadName { .. })
    ));
    let b = ManifestBuilder::new(&NODES, &ch, &GRANTS);
    let small = Region::new_heap(PAGE);
    assert!(matches!(
        b.write(&small, 1),
        Err(BuildError::RegionTooSmall { .. })
    ));
    let big = [ChannelSpec {
        max_message: 17,
        ..ch[0]
    }];
    assert!(matches!(
        ManifestBuilder::new(&NODES, &big, &[]).required_size(),
        Err(BuildError::BadChannel {
            field: "max_message",
            ..
        })
    ));
    assert_eq!(
        ManifestBuilder::new(&NODES, &ch, &GRANTS)
            .section_align(100)
            .required_size(),
        Err(BuildError::BadAlignment(100))
    );
}

#[test]
fn corrupt_headers_get_specific_errors() {
    let (region, _) = built();
    let h = MANIFEST_OFFSET;
    let magic = region.load(h, Ordering::Relaxed).unwrap();
    region.store(h, 0, Ordering::Relaxed).unwrap();
    assert_eq!(
        Manifest::open(&region).err(),
        Some(ManifestError::NotInitialized)
    );
    region.store(h, 7, Ordering::Relaxed).unwrap();
    assert_eq!(
        Manifest::open(&region).err(),
        Some(ManifestError::BadMagic { found: 7 })
    );
    region.store(h, magic, Ordering::Relaxed).unwrap();
    let at = h + offset_of!(ManifestHeader, data_offset);
    let data = region.load(at, Ordering::Relaxed).unwrap();
    region.store(at, data + 8, Ordering::Relaxed).unwrap();
    assert!(matches!(
        Manifest::open(&region),
        Err(ManifestError::BadHeader {
            field: "data_offset",
            ..
        })
    ));
    region.store(at, data, Ordering::Relaxed).unwrap();
    region.store(h + 8, u64::MAX, Ordering::Relaxed).unwrap();
    assert!(matches!(
        Manifest::open(&region),
        Err(ManifestError::BadHeader { .. })
    ));
    let (region, m) = built();
    // Any table byte changed without resealing: checksum.
    let first = m.node_section(0).unwrap().start - 8;
    let _ = first;
    region
        .store(MANIFEST_OFFSET + 128 + 8, 1, Ordering::Relaxed)
        .unwrap();
    assert!(matches!(
        Manifest::open(&region),
        Err(ManifestError::Checksum { .. })
    ));
    // The region header is checked first.
    region.store(0, 1, Ordering::Relaxed).unwrap();
    assert!(matches!(
        Manifest::open(&region),
        Err(ManifestError::Header(_))
    ));
}

#[test]
fn corrupt_entries_get_specific_errors() {
    let (_, m) = built();
    let t = m.tables();
    let cases: [(usize, u64, &str); 6] = [
        (
            t.nodes + offset_of!(NodeEntry, section_offset),
            1 << 40,
            "section_offset",
        ),
        (t.channels + offset_of!(ChannelEntry, kind), 9, "kind"),
        (
            t.channels + offset_of!(ChannelEntry, slot_count),
            3 | 16 << 32,
            "geometry",
        ),
        (
            t.channels + offset_of!(ChannelEntry, max_message) - 4,
            4096 | 999 << 32,
            "max_message",
        ),
        (t.grants + 4 * 16, 9, "node"),
        (t.grants + 8, 3 << 32, "rights"),
    ];
    for (at, value, field) in cases {
        let (region, _) = built();
        region.store(at, value, Ordering::Relaxed).unwrap();
        reseal(&region);
        match Manifest::open(&region) {
            Err(ManifestError::BadEntry { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // A channel moved onto the node sections, a duplicate name, a garbage name.
    let (region, _) = built();
    region
        .store(
            t.channels + offset_of!(ChannelEntry, offset),
            t.sections as u64,
            Ordering::Relaxed,
        )
        .unwrap();
    reseal(&region);
    assert!(matches!(
        Manifest::open(&region),
        Err(ManifestError::Misplaced { index: 0, .. })
    ));
    let (region, _) = built();
    region.copy_in(t.channels + 128, b"ping\0\0\0\0").unwrap();
    reseal(&region);
    assert_eq!(
        Manifest::open(&region).err(),
        Some(ManifestError::Duplicate {
            what: "channel name",
            index: 1
        })
    );
    region.store(t.nodes + 8, 0x0a, Ordering::Relaxed).unwrap();
    reseal(&region);
    assert!(matches!(
        Manifest::open(&region),
        Err(ManifestError::BadName { table: "node", .. })
    ));
    let _ = m;
}

#[test]
fn garbage_in_every_manifest_word_is_an_error_or_a_valid_manifest() {
    let (region, m) = built();
    let end = m.tables().end;
    let mut s = 0x1234_5678_9abc_def0u64;
    let sweep = if cfg!(miri) { 3 } else { 40 };
    for at in (MANIFEST_OFFSET..end).step_by(if cfg!(miri) { 64 } else { 8 }) {
        for k in 0..sweep {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let old = region.load(at, Ordering::Relaxed).unwrap();
            let v = match k % 5 {
                0 => 0,
                1 => u64::MAX,
                2 => old ^ (1 << (s % 64)),
                3 => s % 4096,
                _ => s,
            };
            region.store(at, v, Ordering::Relaxed).unwrap();
            if k % 2 == 0 {
                reseal(&region);
            }
            if let Ok(m) = Manifest::open(&region) {
                // Whatever validated must stay inside the region on every lookup.
                for i in 0..m.channel_count() {
                    let c = m.channel(i).unwrap();
                    assert!(c.offset + c.size <= region.len());
                }
                for i in 0..m.grant_count() {
                    let g = m.grant(i).unwrap();
                    assert!(g.end_block < region.len());
                }
            }
            region.store(at, old, Ordering::Relaxed).unwrap();
        }
        reseal(&region);
    }
    Manifest::open(&region).unwrap();
}

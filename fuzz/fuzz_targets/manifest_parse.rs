//! A hostile manifest: a valid region is built, then the input overwrites words of
//! the manifest (header and tables), optionally re-sealing the checksum so the
//! per-entry checks are reached. Opening must return a manifest or an error, and
//! every lookup on an opened manifest must stay inside the region.

#![no_main]

use core::sync::atomic::Ordering;

use libfuzzer_sys::fuzz_target;
use mkipc::manifest::{
    self, ChannelKind, ChannelSpec, End, GrantSpec, MANIFEST_OFFSET, Manifest, ManifestBuilder,
    NodeSpec, Rights,
};
use mkipc::spsc::Geometry;
use mkipc::{MessageType, Region};

fn region() -> Region {
    let nodes = [NodeSpec { id: 1, name: "a" }, NodeSpec { id: 2, name: "b" }];
    let channels = [
        ChannelSpec::spsc("ab", Geometry::new(4, 16).compact()),
        ChannelSpec {
            name: "many",
            kind: ChannelKind::Mpsc,
            geometry: Geometry::new(4, 16).compact(),
            max_producers: 2,
            max_message: 16,
            message_type: MessageType::bytes(16),
            size: 1024,
        },
    ];
    let grants = [
        GrantSpec {
            node: 1,
            channel: "ab",
            end: End::Producer,
            rights: Rights::SEND,
        },
        GrantSpec {
            node: 2,
            channel: "ab",
            end: End::Consumer,
            rights: Rights::RECEIVE,
        },
        GrantSpec {
            node: 1,
            channel: "many",
            end: End::Producer,
            rights: Rights::SEND,
        },
        GrantSpec {
            node: 2,
            channel: "many",
            end: End::Consumer,
            rights: Rights::RECEIVE | Rights::ADMIN,
        },
    ];
    let b = ManifestBuilder::new(&nodes, &channels, &grants).section_align(128);
    let region = Region::new_heap(b.required_size().expect("layout"));
    b.write(&region, 1).expect("manifest");
    region
}

/// The checksum a writer would record for the tables the header now describes.
fn reseal(region: &Region) {
    let h = MANIFEST_OFFSET;
    let Ok(w1) = region.load(h + 8, Ordering::Relaxed) else {
        return;
    };
    let Ok(w2) = region.load(h + 16, Ordering::Relaxed) else {
        return;
    };
    let (n, c, g) = (w1 as u32 as usize, (w1 >> 32) as usize, w2 as u32 as usize);
    if n > 64 || c > 1024 || g > 4096 {
        return;
    }
    let end = h + 128 + n * 64 + c * 128 + g * 16;
    let Ok(hash) = manifest::checksum(region, h + 128..end) else {
        return;
    };
    let _ = region.store(h + 80, hash, Ordering::Relaxed);
}

fuzz_target!(|data: &[u8]| {
    let region = region();
    let Some((&flags, edits)) = data.split_first() else {
        return;
    };
    // Each edit: a word index (2 bytes) into the manifest area and a value (8 bytes).
    for edit in edits.chunks_exact(10) {
        let index = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % 96;
        let value = u64::from_le_bytes(edit[2..].try_into().unwrap_or_default());
        let _ = region.store(MANIFEST_OFFSET + index * 8, value, Ordering::Relaxed);
    }
    if flags & 1 == 1 {
        reseal(&region);
    }
    let Ok(m) = Manifest::open(&region) else {
        return;
    };
    for i in 0..m.node_count() {
        let node = m.node(i).expect("validated node re-reads");
        let s = m.node_section(i).expect("section");
        assert!(s.end <= region.len() && s.start == node.section);
    }
    for i in 0..m.channel_count() {
        let ch = m.channel(i).expect("validated channel re-reads");
        assert!(ch.offset + ch.size <= region.len());
        assert_eq!(m.find_channel(ch.name.as_str()).map(|c| c.index), Ok(i));
    }
    for i in 0..m.grant_count() {
        let g = m.grant(i).expect("validated grant re-reads");
        assert!(g.end_block + 640 <= region.len());
        assert!(g.node < m.node_count() && g.channel < m.channel_count());
    }
});

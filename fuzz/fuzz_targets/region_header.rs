//! Arbitrary bytes as a region header: reading it returns a header or an error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mkipc::{Region, header};

fuzz_target!(|data: &[u8]| {
    let region = Region::new_heap(data.len().max(8));
    let _ = region.copy_in(0, data);
    if let Ok(h) = header::read_header(&region) {
        assert_eq!(h.region_size.get(), region.len() as u64);
    }
});

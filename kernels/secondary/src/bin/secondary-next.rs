//! A newer build of the secondary kernel, which kernel0 loads when it
//! restarts a node: build 2, adds the checksum request
//! (`bootparse::wire::FEATURE_CHECKSUM`).
#![no_std]
#![no_main]

secondary::image!(build = 2, features = bootparse::wire::FEATURE_CHECKSUM);

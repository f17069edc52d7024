//! The secondary kernel image as first started: build 1, no optional
//! features.
#![no_std]
#![no_main]

secondary::image!(build = 1, features = 0);

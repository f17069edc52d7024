//! Linux userspace binding.

mod affinity;
mod region;

pub use affinity::{online_cpus, pin_current_thread};
pub use region::map_file;

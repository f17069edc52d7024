//! `mkipc`: create, feed, read and inspect mkipc shared-memory regions.

use std::process::ExitCode;

fn main() -> ExitCode {
    mkipc_cli::args::main(std::env::args_os())
}

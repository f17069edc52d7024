//! The command line: one clap command per subcommand, each with its `--help`.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};

use crate::create::{self, CreateArgs};
use crate::endpoint::EndArgs;
use crate::failure::{CliResult, Failure, Status};
use crate::inspect::{self, InspectArgs};
use crate::recv::{self, RecvArgs};
use crate::send::{self, SendArgs};

/// Channel used when `--channel` is not given.
pub const DEFAULT_CHANNEL: &str = "main";

const EXIT_STATUS: &str = "Exit status: 0 success, 1 other error (I/O, channel end busy), \
2 usage error, 3 the peer corrupted shared state (or the file is not a valid region), \
4 the peer died, stopped, closed early or did not show up in time.";

fn region_arg() -> Arg {
    Arg::new("region")
        .value_name("REGION")
        .required(true)
        .value_parser(value_parser!(PathBuf))
        .help("Path of the region file, e.g. /dev/shm/demo")
}

fn channel_arg() -> Arg {
    Arg::new("channel")
        .long("channel")
        .value_name("NAME")
        .default_value(DEFAULT_CHANNEL)
        .help("Channel to use")
}

fn count_arg(what: &'static str) -> Arg {
    Arg::new("count")
        .long("count")
        .value_name("N")
        .value_parser(value_parser!(u64))
        .help(what)
}

fn timing_args() -> [Arg; 2] {
    [
        Arg::new("timeout")
            .long("timeout")
            .value_name("SECS")
            .default_value("30")
            .value_parser(value_parser!(u64).range(1..=86_400))
            .help("Give up (exit 4) after waiting this long for a peer that is not there"),
        Arg::new("dead-ms")
            .long("dead-ms")
            .value_name("MS")
            .default_value("1000")
            .value_parser(value_parser!(u64).range(50..=3_600_000))
            .help("Declare the peer dead after this long without a heartbeat"),
    ]
}

/// The `mkipc` command and its subcommands.
pub fn command() -> Command {
    Command::new("mkipc")
        .about("Create, feed, read and inspect mkipc shared-memory regions")
        .after_help(EXIT_STATUS)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("create")
                .about("Create a region file with one SPSC channel per --channel")
                .long_about(
                    "Create a region file: region header, manifest (two nodes per channel, \
                     NAME.tx and NAME.rx, with their grants), page-aligned node sections and \
                     one SPSC ring per channel.",
                )
                .after_help(EXIT_STATUS)
                .arg(region_arg())
                .arg(
                    Arg::new("channel")
                        .long("channel")
                        .value_name("NAME")
                        .action(ArgAction::Append)
                        .help("Channel to create (repeatable; default: main)"),
                )
                .arg(
                    Arg::new("slots")
                        .long("slots")
                        .value_name("N")
                        .default_value("64")
                        .value_parser(value_parser!(u32))
                        .help("Slots per ring, a power of two"),
                )
                .arg(
                    Arg::new("slot-size")
                        .long("slot-size")
                        .value_name("BYTES")
                        .default_value("256")
                        .value_parser(value_parser!(u32))
                        .help("Largest message, a multiple of 8"),
                )
                .arg(
                    Arg::new("force")
                        .long("force")
                        .action(ArgAction::SetTrue)
                        .help("Overwrite an existing file (only while no process uses it)"),
                ),
        )
        .subcommand(
            Command::new("send")
                .about("Send standard input's lines, or N generated messages, into a channel")
                .long_about(
                    "Send each line of standard input as one message (without its newline), \
                     or with --count N generated messages, each numbered with its ring \
                     position and checksummed. Waits (bounded) while the ring is full; the \
                     receiver is woken through a futex only when it sleeps. Closes the \
                     channel at the end, so the receiver drains and exits.",
                )
                .after_help(EXIT_STATUS)
                .arg(region_arg())
                .arg(channel_arg())
                .arg(count_arg(
                    "Send N generated, sequenced, checksummed messages",
                ))
                .arg(
                    Arg::new("rate")
                        .long("rate")
                        .value_name("PER_SEC")
                        .value_parser(value_parser!(u64).range(1..))
                        .requires("count")
                        .help("Send at most this many generated messages per second"),
                )
                .args(timing_args()),
        )
        .subcommand(
            Command::new("recv")
                .about("Print a channel's messages; with --count verify generated ones")
                .long_about(
                    "Print each message on its own line until the sender closes the channel. \
                     With --count N, receive N generated messages, check each one's sequence \
                     number (its ring position) and checksum, and print `POSITION LENGTH` per \
                     message. Sleeps on the doorbell while idle. If the sender dies, every \
                     message it committed is received, the channel is reset for its next \
                     start, and the exit status is 4.",
                )
                .after_help(EXIT_STATUS)
                .arg(region_arg())
                .arg(channel_arg())
                .arg(count_arg(
                    "Receive and verify N generated messages, then exit",
                ))
                .arg(
                    Arg::new("quiet")
                        .long("quiet")
                        .action(ArgAction::SetTrue)
                        .help("Print only the summary on standard error"),
                )
                .args(timing_args()),
        )
        .subcommand(
            Command::new("inspect")
                .about("Show a region's header, manifest, channels, liveness and flight recorders")
                .after_help(EXIT_STATUS)
                .arg(region_arg())
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .help("Print JSON"),
                )
                .arg(
                    Arg::new("sample-ms")
                        .long("sample-ms")
                        .value_name("MS")
                        .default_value("200")
                        .value_parser(value_parser!(u64).range(1..=60_000))
                        .help("Watch heartbeats this long to tell live nodes from dead ones"),
                ),
        )
}

fn region(m: &ArgMatches) -> PathBuf {
    m.get_one::<PathBuf>("region").cloned().unwrap_or_default()
}

fn end_args(m: &ArgMatches) -> EndArgs {
    EndArgs {
        channel: m
            .get_one::<String>("channel")
            .cloned()
            .unwrap_or_else(|| DEFAULT_CHANNEL.into()),
        count: m.get_one::<u64>("count").copied(),
        timeout: Duration::from_secs(m.get_one::<u64>("timeout").copied().unwrap_or(30)),
        dead_after: Duration::from_millis(m.get_one::<u64>("dead-ms").copied().unwrap_or(1000)),
    }
}

/// Runs the parsed subcommand.
pub fn dispatch(matches: &ArgMatches) -> CliResult {
    let stdout = std::io::stdout();
    let mut err = std::io::stderr();
    match matches.subcommand() {
        Some(("create", m)) => {
            let channels: Vec<String> = m
                .get_many::<String>("channel")
                .map(|v| v.cloned().collect())
                .unwrap_or_else(|| vec![DEFAULT_CHANNEL.into()]);
            let args = CreateArgs {
                channels,
                slots: m.get_one::<u32>("slots").copied().unwrap_or(64),
                slot_size: m.get_one::<u32>("slot-size").copied().unwrap_or(256),
                force: m.get_flag("force"),
            };
            create::run(&region(m), &args, &mut stdout.lock()).map(|_| ())
        }
        Some(("send", m)) => {
            let args = SendArgs {
                end: end_args(m),
                rate: m.get_one::<u64>("rate").copied(),
            };
            let summary = send::run(&region(m), &args, std::io::stdin().lock())?;
            send::report(&summary, &args.end.channel, &mut err);
            Ok(())
        }
        Some(("recv", m)) => {
            let args = RecvArgs {
                end: end_args(m),
                quiet: m.get_flag("quiet"),
            };
            let mut out = std::io::BufWriter::new(stdout.lock());
            let summary = recv::run(&region(m), &args, &mut out)?;
            let _ = writeln!(
                err,
                "received {} message(s) on channel {:?}{}",
                summary.received,
                args.end.channel,
                if args.end.count.is_some() {
                    format!(", all verified, up to position {}", summary.position)
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        Some(("inspect", m)) => {
            let args = InspectArgs {
                json: m.get_flag("json"),
                sample: Duration::from_millis(
                    m.get_one::<u64>("sample-ms").copied().unwrap_or(200),
                ),
            };
            inspect::run(&region(m), &args, &mut stdout.lock())
        }
        _ => Err(Failure::usage("no subcommand; run `mkipc --help`")),
    }
}

/// Parses `argv`, runs the subcommand, prints any failure, and returns the exit code.
pub fn main(argv: impl IntoIterator<Item = OsString>) -> ExitCode {
    let matches = match command().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(Status::Usage.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match dispatch(&matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let _ = writeln!(std::io::stderr(), "mkipc: {f}");
            f.exit_code()
        }
    }
}

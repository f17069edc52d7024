//! `mkipc inspect`: everything a region file says about itself, read-only.

use std::io::Write;
use std::mem::offset_of;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mkipc::Region;
use mkipc::header::read_header;
use mkipc::lifecycle::{PeerStatus, Watchdog};
use mkipc::manifest::wire::{EndControl, NodeControl, RECORDER_LEN};
use mkipc::manifest::{ChannelKind, End, Manifest};
use mkipc::recorder::{FlightRecorder, NO_EVENT};
use mkipc::spsc::RingLayout;
use serde_json::{Value, json};

use crate::failure::{CliResult, Failure};
use crate::live::LockFence;
use crate::regionfile::{lock_path, manifest_failure, map_read_only};

/// Options of `mkipc inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectArgs {
    /// Print JSON instead of text.
    pub json: bool,
    /// How long to watch heartbeats to tell live nodes from dead ones.
    pub sample: Duration,
}

/// Inspects the region at `path` and prints the report to `out`. A region whose
/// header or manifest is invalid is reported as far as it can be read, and fails
/// with exit status 3.
pub fn run(path: &Path, args: &InspectArgs, out: &mut impl Write) -> CliResult {
    let (_file, region) = map_read_only(path)?;
    let mut report = json!({
        "region": path.display().to_string(),
        "file_size": region.len(),
    });
    let outcome = describe(path, &region, args, &mut report);
    let text = if args.json {
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        render(&report)
    };
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::other(format!("cannot write the report: {e}")))?;
    outcome
}

fn describe(path: &Path, region: &Region, args: &InspectArgs, report: &mut Value) -> CliResult {
    let header = match read_header(region) {
        Ok(h) => h,
        Err(e) => {
            report["error"] = json!(format!("region header: {e}"));
            return Err(Failure::corrupt(format!(
                "{}: the region header is invalid: {e}; recreate it with `mkipc create`",
                path.display()
            )));
        }
    };
    report["header"] = json!({
        "abi_version": header.abi_version.get(),
        "layout_hash": format!("{:#018x}", header.layout_hash.get()),
        "features": header.features.get(),
        "region_size": header.region_size.get(),
        "generation": header.generation.get(),
    });
    let manifest = match Manifest::open(region) {
        Ok(m) => m,
        Err(e) => {
            report["error"] = json!(format!("manifest: {e}"));
            return Err(manifest_failure(path, e));
        }
    };
    report["manifest"] = json!({
        "nodes": manifest.node_count(),
        "channels": manifest.channel_count(),
        "grants": manifest.grant_count(),
        "section_size": manifest.section_size(),
    });
    report["nodes"] = nodes(path, &manifest, args.sample);
    report["channels"] = channels(&manifest);
    report["ends"] = ends(&manifest);
    let problems = problems(report);
    if problems.is_empty() {
        return Ok(());
    }
    report["error"] = json!(problems.join("; "));
    Err(Failure::corrupt(format!(
        "{}: shared state is corrupt: {}; recreate the region with `mkipc create` once no \
         process uses it",
        path.display(),
        problems.join("; ")
    )))
}

/// Everything in the report that a correct peer never writes.
fn problems(report: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for n in report["nodes"].as_array().into_iter().flatten() {
        if let Some(l) = n["liveness"].as_str().filter(|l| l.starts_with("corrupt")) {
            found.push(format!("node {}: {l}", n["name"]));
        }
    }
    for c in report["channels"].as_array().into_iter().flatten() {
        if let Some(e) = c["ring"].get("error") {
            found.push(format!("channel {}: ring {e}", c["name"]));
        }
        if let Some(o) = c["ring"]["occupancy"].as_str() {
            found.push(format!("channel {}: {o}", c["name"]));
        }
    }
    found
}

fn word(region: &Region, at: usize) -> Option<u64> {
    region.load(at, Ordering::Acquire).ok()
}

fn nodes(path: &Path, manifest: &Manifest, sample: Duration) -> Value {
    let sample_ms = sample.as_millis() as u64;
    let mut watches: Vec<(u32, Option<Watchdog>)> = Vec::new();
    for i in 0..manifest.node_count() {
        let dog = manifest
            .node(i)
            .ok()
            .and_then(|n| Watchdog::new(manifest, n.id, sample_ms.max(1), 0).ok());
        watches.push((i, dog));
    }
    let first: Vec<_> = watches
        .iter_mut()
        .map(|(_, w)| w.as_mut().map(|w| w.observe(0)))
        .collect();
    std::thread::sleep(sample);
    let mut list = Vec::new();
    for ((i, dog), first) in watches.iter_mut().zip(first) {
        let Ok(node) = manifest.node(*i) else {
            list.push(json!({ "index": i, "error": "unreadable entry" }));
            continue;
        };
        let r = manifest.region();
        let s = node.section;
        let lock = lock_path(path, node.name.as_str());
        let held = lock.exists() && LockFence::new(lock.clone()).held();
        let verdict = match (first, dog.as_mut().map(|d| d.observe(sample_ms.max(1)))) {
            (Some(Err(e)), _) | (_, Some(Err(e))) => format!("corrupt: {e}"),
            (_, Some(Ok(status))) => match status {
                PeerStatus::NotBooted => "never started".into(),
                PeerStatus::Alive { .. } => "alive (beating)".into(),
                PeerStatus::Stopped { .. } => "stopped (exited in order)".into(),
                PeerStatus::Restarted { .. } => "restarted during the sample".into(),
                PeerStatus::Dead { .. } | PeerStatus::Fenced { .. } if held => {
                    "stalled (not beating, process holds its lock)".into()
                }
                PeerStatus::Dead { .. } | PeerStatus::Fenced { .. } => {
                    "dead (not beating, no process holds its lock)".into()
                }
            },
            _ => "unreadable".into(),
        };
        list.push(json!({
            "index": i,
            "id": node.id,
            "name": node.name.as_str(),
            "section": format!("{:#x}..{:#x}", s, s + manifest.section_size()),
            "state_word": word(r, s + offset_of!(NodeControl, state)).map(|w| format!("{w:#018x}")),
            "epoch": word(r, s + offset_of!(NodeControl, epoch)),
            "heartbeat": word(r, s + offset_of!(NodeControl, heartbeat)),
            "faults": word(r, s + offset_of!(NodeControl, faults)),
            "lock_file": lock.display().to_string(),
            "lock_held": held,
            "liveness": verdict,
        }));
    }
    Value::Array(list)
}

fn channels(manifest: &Manifest) -> Value {
    let mut list = Vec::new();
    for i in 0..manifest.channel_count() {
        let Ok(c) = manifest.channel(i) else {
            list.push(json!({ "index": i, "error": "unreadable entry" }));
            continue;
        };
        let mut entry = json!({
            "index": i,
            "name": c.name.as_str(),
            "kind": format!("{:?}", c.kind),
            "slots": c.geometry.slot_count,
            "slot_size": c.geometry.slot_size,
            "max_message": c.max_message,
            "offset": format!("{:#x}", c.offset),
            "size": c.size,
            "message_type": {
                "size": c.message_type.size,
                "align": c.message_type.align,
                "name_hash": format!("{:#018x}", c.message_type.name_hash),
            },
        });
        if c.kind == ChannelKind::Spsc {
            entry["ring"] = ring(manifest.region(), c.offset);
        }
        list.push(entry);
    }
    Value::Array(list)
}

fn ring(region: &Region, offset: usize) -> Value {
    let layout = match RingLayout::read(region, offset) {
        Ok(l) => l,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let head = word(region, layout.head_word());
    let tail = word(region, layout.tail_word());
    let occupancy = match (head, tail) {
        (Some(h), Some(t)) if h <= t && t - h <= layout.capacity() => json!(t - h),
        (Some(h), Some(t)) => json!(format!(
            "inconsistent: head {h} and tail {t} with {} slots (a peer wrote garbage)",
            layout.capacity()
        )),
        _ => Value::Null,
    };
    let need_wakeup = word(region, layout.need_wakeup_word());
    json!({
        "capacity": layout.capacity(),
        "head": head,
        "tail": tail,
        "occupancy": occupancy,
        "receiver_sleeping": need_wakeup.map(|w| w & 1 == 1),
        "receiver_sleeps": need_wakeup.map(|w| w >> 1),
        "receiver_faults": word(region, layout.consumer_faults_word()),
        "sender_faults": word(region, layout.producer_faults_word()),
    })
}

fn ends(manifest: &Manifest) -> Value {
    let r = manifest.region();
    let mut list = Vec::new();
    for i in 0..manifest.grant_count() {
        let Ok(g) = manifest.grant(i) else {
            list.push(json!({ "index": i, "error": "unreadable entry" }));
            continue;
        };
        let channel = manifest
            .channel(g.channel)
            .map(|c| c.name.as_str().to_string());
        let node = manifest.node(g.node).map(|n| n.name.as_str().to_string());
        let b = g.end_block;
        let field = |at: usize| word(r, b + at);
        let mut events = [NO_EVENT; RECORDER_LEN];
        let recorder = FlightRecorder::new(r.clone(), b);
        let recorded = match recorder.events(&mut events) {
            Ok(n) => Value::Array(
                events[..n]
                    .iter()
                    .map(|e| {
                        json!({
                            "index": e.index,
                            "kind": format!("{:?}", e.kind),
                            "epoch": e.epoch,
                            "value": e.value,
                        })
                    })
                    .collect(),
            ),
            Err(e) => json!(format!("unreadable: {e}")),
        };
        list.push(json!({
            "channel": channel.ok(),
            "node": node.ok(),
            "end": match g.end { End::Producer => "sender", End::Consumer => "receiver" },
            "rights": g.rights.to_string(),
            "state_word": field(offset_of!(EndControl, state)).map(|w| format!("{w:#018x}")),
            "epoch": field(offset_of!(EndControl, epoch)),
            "features": field(offset_of!(EndControl, features)),
            "peer_epoch": field(offset_of!(EndControl, peer_epoch)),
            "agreed_features": field(offset_of!(EndControl, agreed_features)),
            "reclaimed_epoch": field(offset_of!(EndControl, reclaimed_epoch)),
            "resume_at": field(offset_of!(EndControl, resume_at)),
            "events_recorded": field(offset_of!(EndControl, events)),
            "faults": field(offset_of!(EndControl, faults)),
            "flight_recorder": recorded,
        }));
    }
    Value::Array(list)
}

/// The human-readable form of a report.
fn render(report: &Value) -> String {
    let mut s = String::new();
    let v = |x: &Value| match x {
        Value::String(t) => t.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    s += &format!(
        "region {} ({} bytes)\n",
        v(&report["region"]),
        v(&report["file_size"])
    );
    if let Some(h) = report.get("header") {
        s += &format!(
            "header: abi {}, layout {}, features {}, size {}, generation {}\n",
            v(&h["abi_version"]),
            v(&h["layout_hash"]),
            v(&h["features"]),
            v(&h["region_size"]),
            v(&h["generation"])
        );
    }
    if let Some(m) = report.get("manifest") {
        s += &format!(
            "manifest: {} nodes, {} channels, {} grants, node sections of {} bytes\n",
            v(&m["nodes"]),
            v(&m["channels"]),
            v(&m["grants"]),
            v(&m["section_size"])
        );
    }
    for n in report["nodes"].as_array().into_iter().flatten() {
        s += &format!(
            "node {} {:<20} epoch {} heartbeat {} faults {}: {}{}\n",
            v(&n["id"]),
            v(&n["name"]),
            v(&n["epoch"]),
            v(&n["heartbeat"]),
            v(&n["faults"]),
            v(&n["liveness"]),
            if n["lock_held"] == json!(true) {
                ", lock held"
            } else {
                ""
            }
        );
    }
    for c in report["channels"].as_array().into_iter().flatten() {
        s += &format!(
            "channel {} ({}): {} slots x {} bytes at {}, max message {}\n",
            v(&c["name"]),
            v(&c["kind"]),
            v(&c["slots"]),
            v(&c["slot_size"]),
            v(&c["offset"]),
            v(&c["max_message"])
        );
        let r = &c["ring"];
        if let Some(e) = r.get("error") {
            s += &format!("  ring: corrupt: {}\n", v(e));
        } else if r.is_object() {
            s += &format!(
                "  ring: head {} tail {} occupancy {}/{}; receiver {} (sleeps {}); faults seen \
                 by receiver {}, by sender {}\n",
                v(&r["head"]),
                v(&r["tail"]),
                v(&r["occupancy"]),
                v(&r["capacity"]),
                if r["receiver_sleeping"] == json!(true) {
                    "asleep"
                } else {
                    "awake"
                },
                v(&r["receiver_sleeps"]),
                v(&r["receiver_faults"]),
                v(&r["sender_faults"])
            );
        }
    }
    for e in report["ends"].as_array().into_iter().flatten() {
        s += &format!(
            "end {} of {} held by {} ({}): state {} epoch {} peer epoch {} reclaimed {} \
             resume at {} faults {}\n",
            v(&e["end"]),
            v(&e["channel"]),
            v(&e["node"]),
            v(&e["rights"]),
            v(&e["state_word"]),
            v(&e["epoch"]),
            v(&e["peer_epoch"]),
            v(&e["reclaimed_epoch"]),
            v(&e["resume_at"]),
            v(&e["faults"])
        );
        match &e["flight_recorder"] {
            Value::Array(events) if events.is_empty() => s += "  flight recorder: empty\n",
            Value::Array(events) => {
                s += "  flight recorder (oldest first):\n";
                for ev in events {
                    s += &format!(
                        "    #{} epoch {} {} {}\n",
                        v(&ev["index"]),
                        v(&ev["epoch"]),
                        v(&ev["kind"]),
                        v(&ev["value"])
                    );
                }
            }
            other => s += &format!("  flight recorder: {}\n", v(other)),
        }
    }
    if let Some(e) = report.get("error") {
        s += &format!("error: {}\n", v(e));
    }
    s
}

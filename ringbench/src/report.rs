//! What a run reports: the table on stdout, the JSON file and the SVG chart.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

/// One contender's figures, all measured in the run.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Contender name.
    pub name: String,
    /// Median round trip over all repetitions' samples, ns.
    pub rtt_p50_ns: f64,
    /// 99th percentile round trip, ns.
    pub rtt_p99_ns: f64,
    /// 99.9th percentile round trip, ns.
    pub rtt_p999_ns: f64,
    /// Median over repetitions of this contender's p50 / the floor's p50.
    pub ratio_to_floor: f64,
    /// Median over repetitions of streamed messages per second; absent for
    /// contenders without a stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_msgs_per_s: Option<f64>,
}

/// One bulk contender's figures (a one-way stream of large payloads).
#[derive(Debug, Clone, Serialize)]
pub struct BulkEntry {
    /// Contender name, with the payload size (`mkipc-pool-1MiB`).
    pub name: String,
    /// Median over repetitions of payload bytes delivered per second.
    pub bytes_per_s: f64,
}

/// One fan-in contender's throughput, measured in the run.
#[derive(Debug, Clone, Serialize)]
pub struct FanInEntry {
    /// Contender name.
    pub name: String,
    /// Producer threads feeding the one receiver.
    pub producers: usize,
    /// Median over repetitions of messages per second received.
    pub msgs_per_s: f64,
    /// Median over repetitions of this contender's rate / the baseline's rate in
    /// the same repetition.
    pub ratio_to_baseline: f64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The floor's median round trip, ns.
    pub floor_rtt_ns: f64,
    /// Every contender, the floor first.
    pub results: Vec<Entry>,
    /// Bulk contenders; listed in the JSON's `results` after the round-trip ones.
    #[serde(skip)]
    pub bulk: Vec<BulkEntry>,
    /// Fan-in throughput (several producers, one receiver), baseline first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fan_in: Vec<FanInEntry>,
}

impl Report {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("a report serializes");
        if let Some(results) = v["results"].as_array_mut() {
            results.extend(self.bulk.iter().map(|b| serde_json::json!(b)));
        }
        serde_json::to_string_pretty(&v).expect("a report serializes")
    }

    /// The report as a text table.
    pub fn table(&self) -> String {
        // Wide enough for the longest name (`mkipc-spsc-futex-spin/xp`).
        let w = self
            .results
            .iter()
            .map(|e| e.name.len())
            .fold(21, usize::max);
        let mut out = format!(
            "{:<w$} {:>9} {:>9} {:>10} {:>8} {:>13}\n",
            "contender", "p50 ns", "p99 ns", "p99.9 ns", "x floor", "msgs/s"
        );
        for e in &self.results {
            let tput = e
                .throughput_msgs_per_s
                .map_or_else(|| "-".to_string(), |t| format!("{:.3e}", t));
            out.push_str(&format!(
                "{:<w$} {:>9.1} {:>9.1} {:>10.1} {:>8.2} {:>13}\n",
                e.name, e.rtt_p50_ns, e.rtt_p99_ns, e.rtt_p999_ns, e.ratio_to_floor, tput
            ));
        }
        if !self.bulk.is_empty() {
            out.push_str(&format!("\n{:<21} {:>13}\n", "bulk", "GB/s"));
            for b in &self.bulk {
                out.push_str(&format!("{:<21} {:>13.2}\n", b.name, b.bytes_per_s / 1e9));
            }
        }
        if let Some(first) = self.fan_in.first() {
            out.push_str(&format!(
                "\n{:<21} {:>13} {:>12}\n",
                format!("fan-in ({}:1)", first.producers),
                "msgs/s",
                "x baseline"
            ));
            for e in &self.fan_in {
                out.push_str(&format!(
                    "{:<21} {:>13} {:>12.2}\n",
                    e.name,
                    format!("{:.3e}", e.msgs_per_s),
                    e.ratio_to_baseline
                ));
            }
        }
        out
    }

    /// Writes the JSON report and draws the chart where asked; the error names
    /// the file that could not be written.
    pub fn save(
        &self,
        json: Option<&Path>,
        plot: Option<&Path>,
        subtitle: &str,
    ) -> Result<(), String> {
        if let Some(path) = json {
            std::fs::write(path, self.to_json())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        if let Some(path) = plot {
            self.plot_svg(path, subtitle)
                .map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Draws the ratios to the floor as a horizontal bar chart (log scale) into an
    /// SVG file.
    pub fn plot_svg(&self, path: &Path, subtitle: &str) -> Result<(), String> {
        self.draw(path, subtitle).map_err(|e| e.to_string())
    }

    fn draw(&self, path: &Path, subtitle: &str) -> Result<(), Box<dyn std::error::Error>> {
        let entries = &self.results;
        let n = entries.len();
        if n == 0 {
            return Err("no results to plot".into());
        }
        let height = 120 + 34 * n as u32;
        let root = SVGBackend::new(path, (900, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, body) = root.split_vertically(50);
        top.titled(
            "Round trip p50 as a multiple of the cache-line floor",
            ("sans-serif", 20),
        )?;
        top.draw_text(
            subtitle,
            &("sans-serif", 12).into_text_style(&top),
            (10, 32),
        )?;
        let max = entries
            .iter()
            .map(|e| e.ratio_to_floor)
            .filter(|r| r.is_finite())
            .fold(1.0, f64::max);
        // Rows (segments of `0..=n-1`) count from the bottom: the first entry, the
        // floor, goes on top.
        let row = |i: usize| n - 1 - i;
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(r) if *r < n => names[n - 1 - r].to_string(),
            _ => String::new(),
        };
        let mut chart = ChartBuilder::on(&body)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(170)
            .build_cartesian_2d((0.9f64..max * 2.5).log_scale(), (0..n - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&label)
            .x_label_formatter(&|x| format!("{x}x"))
            .x_desc("x floor (log scale)")
            .draw()?;
        chart.draw_series(entries.iter().enumerate().map(|(i, e)| {
            let mut bar = Rectangle::new(
                [
                    (1.0, SegmentValue::Exact(row(i))),
                    (e.ratio_to_floor.max(1.0), SegmentValue::Exact(row(i) + 1)),
                ],
                BLUE.mix(0.6).filled(),
            );
            bar.set_margin(5, 5, 0, 0);
            bar
        }))?;
        chart.draw_series(entries.iter().enumerate().map(|(i, e)| {
            Text::new(
                format!(" {:.2}x", e.ratio_to_floor),
                (e.ratio_to_floor.max(1.0), SegmentValue::CenterOf(row(i))),
                TextStyle::from(("sans-serif", 13).into_font())
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )
        }))?;
        root.present()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let entry = |name: &str, p50: f64, tput: Option<f64>| Entry {
            name: name.to_string(),
            rtt_p50_ns: p50,
            rtt_p99_ns: p50 * 2.0,
            rtt_p999_ns: p50 * 3.0,
            ratio_to_floor: p50 / 100.0,
            throughput_msgs_per_s: tput,
        };
        Report {
            floor_rtt_ns: 100.0,
            results: vec![
                entry("floor", 100.0, None),
                entry("mkipc-spsc", 150.0, Some(2.5e7)),
                entry("pipe", 4000.0, None),
            ],
            bulk: vec![],
            fan_in: Vec::new(),
        }
    }

    #[test]
    fn json_has_the_documented_keys_and_omits_missing_throughput() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["floor_rtt_ns"], 100.0);
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        for r in results {
            for key in ["name", "rtt_p50_ns", "rtt_p99_ns", "ratio_to_floor"] {
                assert!(r.get(key).is_some(), "{key} missing in {r}");
            }
        }
        assert_eq!(results[1]["name"], "mkipc-spsc");
        assert_eq!(results[1]["ratio_to_floor"], 1.5);
        assert_eq!(results[1]["throughput_msgs_per_s"], 2.5e7);
        assert!(results[0].get("throughput_msgs_per_s").is_none());
        assert!(results[2].get("throughput_msgs_per_s").is_none());
    }

    #[test]
    fn bulk_entries_follow_in_results_with_bytes_per_s() {
        let mut r = sample();
        r.bulk.push(BulkEntry {
            name: "mkipc-pool-1MiB".to_string(),
            bytes_per_s: 4.0e9,
        });
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(results[3]["name"], "mkipc-pool-1MiB");
        assert_eq!(results[3]["bytes_per_s"], 4.0e9);
        assert!(results[3].get("throughput_msgs_per_s").is_none());
        assert!(v.get("bulk").is_none());
        assert!(r.table().contains("mkipc-pool-1MiB"));
        assert!(r.table().contains("4.00"));
    }

    #[test]
    fn fan_in_rows_follow_the_table_and_the_json() {
        let mut r = sample();
        r.fan_in = vec![FanInEntry {
            name: "mkipc-mpsc".to_string(),
            producers: 4,
            msgs_per_s: 3.0e7,
            ratio_to_baseline: 1.25,
        }];
        let t = r.table();
        assert!(t.contains("fan-in (4:1)"));
        assert!(t.lines().last().unwrap().starts_with("mkipc-mpsc"));
        assert!(t.lines().last().unwrap().trim_end().ends_with("1.25"));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["fan_in"][0]["ratio_to_baseline"], 1.25);
        assert!(
            serde_json::from_str::<serde_json::Value>(&sample().to_json())
                .unwrap()
                .get("fan_in")
                .is_none()
        );
    }

    #[test]
    fn table_has_a_row_per_contender() {
        let t = sample().table();
        assert_eq!(t.lines().count(), 4);
        assert!(t.lines().nth(2).unwrap().starts_with("mkipc-spsc"));
        assert!(t.contains("2.500e7"));
        assert!(t.lines().nth(3).unwrap().trim_end().ends_with('-'));
    }

    #[test]
    fn plot_writes_an_svg_with_every_name() {
        let path = std::env::temp_dir().join(format!("ringbench-test-{}.svg", std::process::id()));
        sample().plot_svg(&path, "test").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        for name in ["floor", "mkipc-spsc", "pipe", "40.00x"] {
            assert!(svg.contains(name), "{name} not in the chart");
        }
    }
}

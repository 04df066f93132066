//! Samples → percentiles, and the report (a Markdown table on stdout, JSON to a file).

use serde_json::{json, Value};
use std::time::Duration;

/// Latencies of one measured operation.
pub struct Samples {
    pub name: String,
    pub ms: Vec<f64>,
}

impl Samples {
    pub fn new(name: impl Into<String>) -> Samples {
        Samples { name: name.into(), ms: Vec::new() }
    }

    pub fn push(&mut self, d: Duration) {
        self.ms.push(d.as_secs_f64() * 1000.0);
    }

    /// The `p`-th percentile (nearest rank), in milliseconds; NaN without samples.
    pub fn pct(&self, p: f64) -> f64 {
        percentile(&self.ms, p)
    }
}

/// Nearest-rank percentile of `v` (unsorted); NaN when empty.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

/// Everything one run measured, in the order it was measured.
#[derive(Default)]
pub struct Report {
    pub latencies: Vec<Samples>,
    /// (label, value, unit)
    pub figures: Vec<(String, f64, &'static str)>,
}

impl Report {
    pub fn figure(&mut self, label: impl Into<String>, value: f64, unit: &'static str) {
        let label = label.into();
        eprintln!("  {label}: {} {unit}", fmt(value));
        self.figures.push((label, value, unit));
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("| latency | runs | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|---|\n");
        for s in &self.latencies {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                s.name,
                s.ms.len(),
                fmt(s.pct(50.0)),
                fmt(s.pct(90.0)),
                fmt(s.pct(99.0))
            ));
        }
        out.push_str("\n| figure | value |\n|---|---|\n");
        for (l, v, u) in &self.figures {
            out.push_str(&format!("| {l} | {} {u} |\n", fmt(*v)));
        }
        out
    }

    pub fn json(&self, meta: Value) -> Value {
        let lat: Vec<Value> = self
            .latencies
            .iter()
            .map(|s| {
                json!({"name": s.name, "runs": s.ms.len(), "p50_ms": s.pct(50.0), "p90_ms": s.pct(90.0),
                       "p99_ms": s.pct(99.0), "samples_ms": s.ms})
            })
            .collect();
        let figs: Vec<Value> = self.figures.iter().map(|(l, v, u)| json!({"name": l, "value": v, "unit": u})).collect();
        json!({"meta": meta, "latencies": lat, "figures": figs})
    }
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 90.0), 90.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }
}

//! Counters the node keeps for Prometheus: associations, instances, bytes, store latency.
//! Plain atomics: updated on every C-STORE, so they must cost next to nothing.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the store-latency histogram buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    pub associations: AtomicU64,
    pub instances_stored: AtomicU64,
    pub instances_refused: AtomicU64,
    pub bytes_received: AtomicU64,
    pub export_failures: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn observe_store(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// Prometheus text exposition of these counters.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        };
        counter(out, "pulmo_associations_total", "DICOM associations accepted.", &self.associations);
        counter(out, "pulmo_instances_stored_total", "Instances stored and acknowledged.", &self.instances_stored);
        counter(out, "pulmo_instances_refused_total", "C-STORE requests answered with a failure status.", &self.instances_refused);
        counter(out, "pulmo_received_bytes_total", "Data set bytes of stored instances.", &self.bytes_received);
        counter(out, "pulmo_export_failures_total", "Export attempts that failed (each object counts).", &self.export_failures);
        let name = "pulmo_store_latency_seconds";
        let _ = writeln!(out, "# HELP {name} Time to store one instance durably (file + database).\n# TYPE {name} histogram");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", bucket.load(Relaxed));
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.latency_sum_micros.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

//! Prometheus text exposition (format 0.0.4), written by hand: a few
//! families, each with HELP and TYPE, labels escaped.

use std::fmt::Write;

use crate::containers::Containers;
use berth_image::ImageStore;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        if l.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", l.join(","));
        }
    }
}

/// Resident memory of this process, from /proc.
fn own_rss() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024.0)
}

pub fn render(containers: &Containers, images: &ImageStore) -> String {
    let mut out = String::new();
    let all = containers.list(true).unwrap_or_default();
    let mut f = Family { out: &mut out };

    f.header("berth_containers", "gauge", "Containers by state.");
    for state in ["created", "running", "exited", "restarting"] {
        let n = all.iter().filter(|c| c.state == state).count();
        f.sample("berth_containers", &[("state", state)], n as f64);
    }
    f.header("berth_container_restarts_total", "counter", "Restarts by restart policy.");
    for c in &all {
        f.sample("berth_container_restarts_total", &[("id", &c.id), ("name", &c.name)], c.restart_count as f64);
    }
    let running: Vec<_> = all.iter().filter(|c| c.state == "running").collect();
    let stats: Vec<_> = running.iter().map(|c| (c, containers.stats(&c.id).ok())).collect();
    type Pick = fn(&berth_core::api::ContainerStats) -> Option<f64>;
    let families: [(&str, &str, &str, Pick); 6] = [
        ("berth_container_cpu_seconds_total", "counter", "CPU time used.", |s| s.cpu_usage_ns.map(|n| n as f64 / 1e9)),
        ("berth_container_memory_bytes", "gauge", "Memory in use.", |s| s.memory_usage.map(|n| n as f64)),
        ("berth_container_memory_limit_bytes", "gauge", "Memory limit (absent: none).", |s| {
            s.memory_limit.map(|n| n as f64)
        }),
        ("berth_container_pids", "gauge", "Processes.", |s| s.pids.map(|n| n as f64)),
        ("berth_container_block_read_bytes_total", "counter", "Bytes read from block devices.", |s| {
            s.block_read.map(|n| n as f64)
        }),
        ("berth_container_block_write_bytes_total", "counter", "Bytes written to block devices.", |s| {
            s.block_write.map(|n| n as f64)
        }),
    ];
    for (name, kind, help, pick) in families {
        f.header(name, kind, help);
        for (c, s) in &stats {
            if let Some(v) = s.as_ref().and_then(pick) {
                f.sample(name, &[("id", &c.id), ("name", &c.name)], v);
            }
        }
    }
    f.header("berth_images", "gauge", "Stored images.");
    f.sample("berth_images", &[], images.list().map(|l| l.len()).unwrap_or(0) as f64);
    if let Some(rss) = own_rss() {
        f.header("berth_daemon_resident_memory_bytes", "gauge", "Resident memory of the daemon.");
        f.sample("berth_daemon_resident_memory_bytes", &[], rss);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let mut s = String::new();
        let mut f = Family { out: &mut s };
        f.header("x", "gauge", "help");
        f.sample("x", &[("name", "a\"b\\c")], 1.0);
        assert_eq!(s, "# HELP x help\n# TYPE x gauge\nx{name=\"a\\\"b\\\\c\"} 1\n");
    }
}

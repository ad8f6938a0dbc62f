//! Reading a container's resource use from its cgroup (v1 or v2).

use std::path::PathBuf;

use berth_core::api::ContainerStats;

/// Where the cgroup filesystem is and which version it speaks. The root is
/// configuration so tests can point it at a directory of their own.
#[derive(Debug, Clone)]
pub struct Cgroups {
    pub root: PathBuf,
    pub v2: bool,
}

impl Cgroups {
    pub fn host() -> Self {
        let root = PathBuf::from("/sys/fs/cgroup");
        let v2 = root.join("cgroup.controllers").exists();
        Self { root, v2 }
    }

    fn file(&self, controller: &str, rel: &str, name: &str) -> PathBuf {
        if self.v2 {
            self.root.join(rel).join(name)
        } else {
            self.root.join(controller).join(rel).join(name)
        }
    }

    fn read(&self, controller: &str, rel: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.file(controller, rel, name)).ok()
    }

    /// Reads the counters of the cgroup at `rel` (e.g. `berth/<id>`).
    /// `time` is when they are read, as the caller's clock stamps it.
    pub fn stats(&self, rel: &str, time: String) -> ContainerStats {
        let rel = rel.trim_start_matches('/');
        let num = |s: Option<String>| s.and_then(|s| parse_limit(s.trim()));
        let mut st = ContainerStats {
            time,
            online_cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
            ..Default::default()
        };
        if self.v2 {
            st.cpu_usage_ns = self.read("", rel, "cpu.stat").and_then(|s| keyed(&s, "usage_usec")).map(|u| u * 1000);
            st.memory_usage = num(self.read("", rel, "memory.current"));
            st.memory_limit = num(self.read("", rel, "memory.max"));
            st.pids = num(self.read("", rel, "pids.current"));
            st.pids_limit = num(self.read("", rel, "pids.max"));
            if let Some(io) = self.read("", rel, "io.stat") {
                let (r, w) = io_stat_v2(&io);
                st.block_read = Some(r);
                st.block_write = Some(w);
            }
        } else {
            st.cpu_usage_ns = num(self.read("cpuacct", rel, "cpuacct.usage"));
            st.memory_usage = num(self.read("memory", rel, "memory.usage_in_bytes"));
            // v1 reports "no limit" as a huge page-aligned number.
            st.memory_limit = num(self.read("memory", rel, "memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
            st.pids = num(self.read("pids", rel, "pids.current"));
            st.pids_limit = num(self.read("pids", rel, "pids.max"));
            if let Some(io) = self.read("blkio", rel, "blkio.throttle.io_service_bytes") {
                let (r, w) = blkio_v1(&io);
                st.block_read = Some(r);
                st.block_write = Some(w);
            }
        }
        st
    }

    /// The file whose `oom_kill` count says whether the OOM killer struck.
    pub fn oom_file(&self, rel: &str) -> PathBuf {
        let rel = rel.trim_start_matches('/');
        if self.v2 {
            self.file("", rel, "memory.events")
        } else {
            self.file("memory", rel, "memory.oom_control")
        }
    }

    /// The directories of cgroup `rel` in every hierarchy (one on v2, one
    /// per controller on v1).
    pub fn dirs(&self, rel: &str) -> Vec<PathBuf> {
        if self.v2 {
            vec![self.root.join(rel)]
        } else {
            std::fs::read_dir(&self.root).map(|r| r.flatten().map(|e| e.path().join(rel)).collect()).unwrap_or_default()
        }
    }

    /// The directories of cgroup `rel` in every hierarchy a process can
    /// join without further set-up: on v1 each mounted hierarchy once (the
    /// systemd one included) except cpuset, whose new cgroups have no CPUs
    /// or memory nodes until someone copies them in.
    pub fn joinable(&self, rel: &str) -> Vec<PathBuf> {
        if self.v2 {
            return vec![self.root.join(rel)];
        }
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        // `cpu` and `cpuacct` are often links to `cpu,cpuacct`: one each.
        let hierarchies: std::collections::BTreeSet<PathBuf> = entries
            .flatten()
            .filter_map(|e| std::fs::canonicalize(e.path()).ok())
            .filter(|p| !p.file_name().unwrap_or_default().to_string_lossy().contains("cpuset"))
            .filter(|p| p.join("cgroup.procs").is_file())
            .collect();
        hierarchies.into_iter().map(|h| h.join(rel)).collect()
    }
}

/// A number, or `max` (no limit) as `None`.
fn parse_limit(s: &str) -> Option<u64> {
    if s == "max" {
        None
    } else {
        s.parse().ok()
    }
}

/// `key value` lines, as in `cpu.stat`.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
}

/// `8:0 rbytes=1 wbytes=2 ...` per device, summed.
fn io_stat_v2(text: &str) -> (u64, u64) {
    let mut r = 0;
    let mut w = 0;
    for field in text.split_whitespace() {
        if let Some(v) = field.strip_prefix("rbytes=") {
            r += v.parse::<u64>().unwrap_or(0);
        } else if let Some(v) = field.strip_prefix("wbytes=") {
            w += v.parse::<u64>().unwrap_or(0);
        }
    }
    (r, w)
}

/// `8:0 Read 4096` lines (and a `Total`), summed per direction.
fn blkio_v1(text: &str) -> (u64, u64) {
    let mut r = 0;
    let mut w = 0;
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, n] = parts.as_slice() {
            let n: u64 = n.parse().unwrap_or(0);
            match *op {
                "Read" => r += n,
                "Write" => w += n,
                _ => {}
            }
        }
    }
    (r, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shims_join_every_v1_hierarchy_once_but_cpuset() {
        let t = tempfile::tempdir().unwrap();
        for h in ["cpu,cpuacct", "memory", "pids", "systemd", "cpuset", "unified"] {
            std::fs::create_dir(t.path().join(h)).unwrap();
            std::fs::write(t.path().join(h).join("cgroup.procs"), "").unwrap();
        }
        std::os::unix::fs::symlink(t.path().join("cpu,cpuacct"), t.path().join("cpu")).unwrap();
        std::fs::create_dir(t.path().join("not-a-hierarchy")).unwrap();
        let cg = Cgroups { root: t.path().to_path_buf(), v2: false };
        let names: Vec<String> = cg
            .joinable("berth/shims")
            .iter()
            .map(|p| p.strip_prefix(t.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "cpu,cpuacct/berth/shims",
                "memory/berth/shims",
                "pids/berth/shims",
                "systemd/berth/shims",
                "unified/berth/shims"
            ]
        );
        let v2 = Cgroups { root: t.path().to_path_buf(), v2: true };
        assert_eq!(v2.joinable("berth/shims"), vec![t.path().join("berth/shims")]);
    }
    use std::path::Path;

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[test]
    fn reads_v1_counters() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "cpuacct/berth/c/cpuacct.usage", "1500000000\n");
        write(r, "memory/berth/c/memory.usage_in_bytes", "4096\n");
        write(r, "memory/berth/c/memory.limit_in_bytes", "9223372036854771712\n");
        write(r, "pids/berth/c/pids.current", "3\n");
        write(r, "pids/berth/c/pids.max", "max\n");
        write(
            r,
            "blkio/berth/c/blkio.throttle.io_service_bytes",
            "8:0 Read 100\n8:0 Write 50\n8:0 Total 150\nTotal 150\n",
        );
        let st = Cgroups { root: r.to_path_buf(), v2: false }.stats("/berth/c", "t".into());
        assert_eq!(st.cpu_usage_ns, Some(1_500_000_000));
        assert_eq!(st.memory_usage, Some(4096));
        assert_eq!(st.memory_limit, None, "the v1 'unlimited' value");
        assert_eq!((st.pids, st.pids_limit), (Some(3), None));
        assert_eq!((st.block_read, st.block_write), (Some(100), Some(50)));
    }

    #[test]
    fn reads_v2_counters() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "berth/c/cpu.stat", "usage_usec 2000\nuser_usec 1500\n");
        write(r, "berth/c/memory.current", "8192\n");
        write(r, "berth/c/memory.max", "268435456\n");
        write(r, "berth/c/pids.current", "2\n");
        write(r, "berth/c/pids.max", "100\n");
        write(r, "berth/c/io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n");
        let st = Cgroups { root: r.to_path_buf(), v2: true }.stats("berth/c", "t".into());
        assert_eq!(st.cpu_usage_ns, Some(2_000_000));
        assert_eq!(st.memory_limit, Some(268_435_456));
        assert_eq!(st.pids_limit, Some(100));
        assert_eq!((st.block_read, st.block_write), (Some(11), Some(22)));
    }
}

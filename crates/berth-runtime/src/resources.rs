//! cgroup limits (memory, swap, CPU quota and shares, pids) and the device
//! allowlist, validated with Docker's bounds.

use berth_core::api::ResourceLimits;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use crate::SpecError;

/// Docker's floor for `--memory`: below this the runtime itself cannot start.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;
/// The CFS period every quota is expressed over (100 ms).
pub const CPU_PERIOD: u64 = 100_000;
/// The kernel's smallest CFS quota (1 ms).
const MIN_CPU_QUOTA: i64 = 1_000;

/// The character devices every container gets: (path, major, minor).
/// `/dev/ptmx` is a symlink to `pts/ptmx` that the runtime makes, so it is
/// only in the cgroup rules.
const DEFAULT_DEVICES: [(&str, i64, i64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> SpecError {
    SpecError::InvalidLimit { field, value: value.to_string(), reason }
}

/// Device nodes to create in the container's `/dev`.
pub fn default_devices() -> Result<Vec<LinuxDevice>, SpecError> {
    DEFAULT_DEVICES
        .iter()
        .map(|(path, major, minor)| {
            Ok(LinuxDeviceBuilder::default()
                .path(*path)
                .typ(LinuxDeviceType::C)
                .major(*major)
                .minor(*minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()?)
        })
        .collect()
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).access("rwm");
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

/// The device cgroup: deny everything, then allow the default devices, the
/// pseudo-terminals (`/dev/pts/*`, 136:*) and `/dev/ptmx` (5:2). Privileged
/// containers may use every device.
pub fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    if privileged {
        return Ok(vec![rule(true, Some(LinuxDeviceType::A), None, None)?]);
    }
    let mut rules = vec![rule(false, Some(LinuxDeviceType::A), None, None)?];
    for (_, major, minor) in DEFAULT_DEVICES {
        rules.push(rule(true, Some(LinuxDeviceType::C), Some(major), Some(minor))?);
    }
    rules.push(rule(true, Some(LinuxDeviceType::C), Some(5), Some(2))?);
    rules.push(rule(true, Some(LinuxDeviceType::C), Some(136), None)?);
    Ok(rules)
}

/// Validates the limits and turns them into cgroup resources.
///
/// * memory ≥ 6 MiB; `memory_swap` (memory plus swap) ≥ memory or -1 for
///   unlimited swap, and only together with memory; without it, swap is
///   2 × memory as in Docker;
/// * `cpus` in (0, 1024], at least 0.01 (a 1 ms quota), as a quota over a
///   100 ms period;
/// * `cpu_shares` in 2..=262144;
/// * `pids_limit` positive, or -1 for none.
pub fn build_resources(limits: &ResourceLimits, privileged: bool) -> Result<LinuxResources, SpecError> {
    let mut res = LinuxResourcesBuilder::default().devices(device_rules(privileged)?);

    if let Some(mem) = limits.memory {
        if mem < MIN_MEMORY {
            return Err(invalid("memory", mem, "the minimum is 6MiB (6291456 bytes); give at least 6m"));
        }
        let limit = i64::try_from(mem).map_err(|_| invalid("memory", mem, "it is too large; give fewer bytes"))?;
        let swap = match limits.memory_swap {
            None => limit.saturating_mul(2),
            Some(-1) => -1,
            Some(s) if s < limit => {
                return Err(invalid(
                    "memory_swap",
                    s,
                    "memory_swap is memory plus swap and must be at least memory, or -1 for unlimited swap",
                ))
            }
            Some(s) => s,
        };
        res = res.memory(LinuxMemoryBuilder::default().limit(limit).swap(swap).build()?);
    } else if let Some(s) = limits.memory_swap {
        return Err(invalid("memory_swap", s, "it needs memory to be set too; give memory as well"));
    }

    if limits.cpus.is_some() || limits.cpu_shares.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(cpus) = limits.cpus {
            if !cpus.is_finite() || cpus <= 0.0 || cpus > 1024.0 {
                return Err(invalid("cpus", cpus, "give a number of CPUs above 0 and at most 1024, e.g. 1.5"));
            }
            let quota = (cpus * CPU_PERIOD as f64).round() as i64;
            if quota < MIN_CPU_QUOTA {
                return Err(invalid("cpus", cpus, "the smallest share is 0.01 CPUs"));
            }
            cpu = cpu.quota(quota).period(CPU_PERIOD);
        }
        if let Some(shares) = limits.cpu_shares {
            if !(2..=262_144).contains(&shares) {
                return Err(invalid("cpu_shares", shares, "give a weight from 2 to 262144 (default 1024)"));
            }
            cpu = cpu.shares(shares);
        }
        res = res.cpu(cpu.build()?);
    }

    if let Some(pids) = limits.pids_limit {
        if pids == 0 || pids < -1 {
            return Err(invalid("pids_limit", pids, "give a positive number of processes, or -1 for no limit"));
        }
        res = res.pids(LinuxPidsBuilder::default().limit(pids).build()?);
    }
    Ok(res.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(f: impl FnOnce(&mut ResourceLimits)) -> ResourceLimits {
        let mut l = ResourceLimits::default();
        f(&mut l);
        l
    }

    fn err_field(l: &ResourceLimits) -> &'static str {
        match build_resources(l, false) {
            Err(SpecError::InvalidLimit { field, .. }) => field,
            other => panic!("expected an invalid limit, got {other:?}"),
        }
    }

    #[test]
    fn no_limits_means_only_device_rules() {
        let r = build_resources(&ResourceLimits::default(), false).unwrap();
        assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
        let devs = r.devices().as_ref().unwrap();
        assert!(!devs[0].allow() && devs[0].major().is_none());
        assert_eq!(devs.len(), 1 + 6 + 2);
        assert!(devs[1..].iter().all(|d| d.allow() && d.access().as_deref() == Some("rwm")));
    }

    #[test]
    fn privileged_allows_all_devices() {
        let r = build_resources(&ResourceLimits::default(), true).unwrap();
        let devs = r.devices().as_ref().unwrap();
        assert_eq!(devs.len(), 1);
        assert!(devs[0].allow() && devs[0].typ() == Some(LinuxDeviceType::A));
    }

    #[test]
    fn memory_and_swap() {
        let r = build_resources(&limits(|l| l.memory = Some(64 << 20)), false).unwrap();
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        let r = build_resources(&limits(|l| (l.memory, l.memory_swap) = (Some(64 << 20), Some(-1))), false).unwrap();
        assert_eq!(r.memory().unwrap().swap(), Some(-1));
        let r =
            build_resources(&limits(|l| (l.memory, l.memory_swap) = (Some(64 << 20), Some(64 << 20))), false).unwrap();
        assert_eq!(r.memory().unwrap().swap(), Some(64 << 20));
        assert_eq!(
            build_resources(&limits(|l| l.memory = Some(MIN_MEMORY)), false).unwrap().memory().unwrap().limit(),
            Some(6291456)
        );
    }

    #[test]
    fn memory_validation() {
        assert_eq!(err_field(&limits(|l| l.memory = Some(MIN_MEMORY - 1))), "memory");
        assert_eq!(err_field(&limits(|l| l.memory = Some(u64::MAX))), "memory");
        assert_eq!(err_field(&limits(|l| (l.memory, l.memory_swap) = (Some(64 << 20), Some(32 << 20)))), "memory_swap");
        assert_eq!(err_field(&limits(|l| (l.memory, l.memory_swap) = (Some(64 << 20), Some(-2)))), "memory_swap");
        assert_eq!(err_field(&limits(|l| l.memory_swap = Some(1 << 30))), "memory_swap");
        let e = build_resources(&limits(|l| l.memory = Some(1024)), false).unwrap_err().to_string();
        assert!(e.contains("memory = 1024") && e.contains("6m"), "{e}");
    }

    #[test]
    fn cpus_and_shares() {
        let r = build_resources(&limits(|l| (l.cpus, l.cpu_shares) = (Some(1.5), Some(512))), false).unwrap();
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.quota(), c.period(), c.shares()), (Some(150_000), Some(100_000), Some(512)));
        let r = build_resources(&limits(|l| l.cpus = Some(0.01)), false).unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(1000));
        for bad in [0.0, -1.0, 0.001, 1024.5, f64::NAN, f64::INFINITY] {
            assert_eq!(err_field(&limits(|l| l.cpus = Some(bad))), "cpus", "{bad}");
        }
        assert!(build_resources(&limits(|l| l.cpus = Some(1024.0)), false).is_ok());
        for bad in [0, 1, 262_145] {
            assert_eq!(err_field(&limits(|l| l.cpu_shares = Some(bad))), "cpu_shares", "{bad}");
        }
        assert!(build_resources(&limits(|l| l.cpu_shares = Some(2)), false).is_ok());
        assert!(build_resources(&limits(|l| l.cpu_shares = Some(262_144)), false).is_ok());
    }

    #[test]
    fn pids() {
        assert_eq!(build_resources(&limits(|l| l.pids_limit = Some(100)), false).unwrap().pids().unwrap().limit(), 100);
        assert_eq!(build_resources(&limits(|l| l.pids_limit = Some(-1)), false).unwrap().pids().unwrap().limit(), -1);
        assert_eq!(err_field(&limits(|l| l.pids_limit = Some(0))), "pids_limit");
        assert_eq!(err_field(&limits(|l| l.pids_limit = Some(-5))), "pids_limit");
    }

    #[test]
    fn default_device_nodes() {
        let d = default_devices().unwrap();
        assert_eq!(d.len(), 6);
        assert!(d.iter().all(|d| d.typ() == LinuxDeviceType::C && d.file_mode() == Some(0o666)));
    }
}

//! Telling a shim apart from whatever process later holds its PID.
//!
//! A PID alone proves little: once the shim is gone, or after a reboot, the
//! kernel hands the number to someone else, and `kill(pid, 0)` on it keeps
//! a dead container "running" forever. A shim is therefore known by its
//! PID, its start time (field 22 of `/proc/PID/stat`, clock ticks since
//! boot) and the boot it started in (`/proc/sys/kernel/random/boot_id`);
//! it is alive while all three still match and it is not a zombie.
//!
//! [`judge`] is the pure decision; [`Processes`] is the narrow effect it
//! needs (the real [`ProcFs`], or [`FakeProcesses`] in tests).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Who a shim is: enough to tell it from a later process with its PID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimIdentity {
    pub pid: i32,
    /// Clock ticks after boot at which the process started.
    pub start_time: u64,
    /// The kernel's random boot ID when it started.
    pub boot_id: String,
}

/// What is known of a shim: all of it, or only a PID (records written
/// before berth kept start times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    Identity(ShimIdentity),
    Pid(i32),
}

impl Known {
    pub fn pid(&self) -> i32 {
        match self {
            Self::Identity(i) => i.pid,
            Self::Pid(p) => *p,
        }
    }
}

/// What `/proc` says about a PID now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub start_time: u64,
    /// Ended, not reaped yet: as good as gone.
    pub zombie: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Lost(Lost),
}

/// Why a shim counts as lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    #[error("the host rebooted since the shim started")]
    Rebooted,
    #[error("the shim ended without recording the container's exit (was it killed?)")]
    Ended,
    #[error("the shim's PID now belongs to another process")]
    Reused,
}

/// The effect [`check`] needs: reading `/proc`.
pub trait Processes: Send + Sync {
    /// This boot's ID, if readable.
    fn boot_id(&self) -> Option<String>;
    /// The process with this PID, if there is one.
    fn info(&self, pid: i32) -> Option<ProcessInfo>;
    /// Its command line, if there is one.
    fn cmdline(&self, pid: i32) -> Option<Vec<String>>;

    /// The identity of a running process, `None` if it is gone (or this
    /// boot's ID is unreadable).
    fn identity(&self, pid: i32) -> Option<ShimIdentity> {
        let info = self.info(pid)?;
        Some(ShimIdentity { pid, start_time: info.start_time, boot_id: self.boot_id()? })
    }
}

/// The real `/proc` (a directory of the same shape in tests).
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl ProcFs {
    pub fn host() -> Self {
        Self::at(Path::new("/proc"))
    }

    pub fn at(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
    }
}

impl Processes for ProcFs {
    fn boot_id(&self) -> Option<String> {
        let id = std::fs::read_to_string(self.root.join("sys/kernel/random/boot_id")).ok()?;
        Some(id.trim().to_string()).filter(|s| !s.is_empty())
    }

    fn info(&self, pid: i32) -> Option<ProcessInfo> {
        if pid <= 0 {
            return None;
        }
        parse_stat(&std::fs::read_to_string(self.root.join(pid.to_string()).join("stat")).ok()?)
    }

    fn cmdline(&self, pid: i32) -> Option<Vec<String>> {
        if pid <= 0 {
            return None;
        }
        let raw = std::fs::read(self.root.join(pid.to_string()).join("cmdline")).ok()?;
        Some(
            raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect(),
        )
    }
}

/// Parses `/proc/PID/stat`: the state (field 3) and start time (field 22).
/// The command name (field 2) may hold spaces and parentheses, so fields
/// are counted after its last `)`.
pub fn parse_stat(text: &str) -> Option<ProcessInfo> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field 22 is fields[19].
    let state = fields.first()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(ProcessInfo { start_time, zombie: *state == "Z" || *state == "X" })
}

/// Whether a command line is berth's shim for `container`: `berth-shim`
/// or `berth shim`, with `--id CONTAINER`.
pub fn is_shim_for(cmdline: &[String], container: &str) -> bool {
    let program = cmdline.first().map(|a| Path::new(a).file_name().unwrap_or_default().to_string_lossy().to_string());
    let shim = program.as_deref() == Some("berth-shim") || cmdline.get(1).is_some_and(|a| a == "shim");
    shim && cmdline.windows(2).any(|w| w[0] == "--id" && w[1] == container)
}

/// The pure decision. `boot_id` is this boot's (unknown: not compared),
/// `now` and `cmdline` what `/proc` holds for the PID today.
pub fn judge(
    known: &Known,
    container: &str,
    boot_id: Option<&str>,
    now: Option<&ProcessInfo>,
    cmdline: Option<&[String]>,
) -> Liveness {
    match known {
        Known::Identity(id) => {
            if boot_id.is_some_and(|b| b != id.boot_id) {
                return Liveness::Lost(Lost::Rebooted);
            }
            match now {
                None => Liveness::Lost(Lost::Ended),
                Some(p) if p.start_time != id.start_time => Liveness::Lost(Lost::Reused),
                Some(p) if p.zombie => Liveness::Lost(Lost::Ended),
                Some(_) => Liveness::Alive,
            }
        }
        // Only a PID: alive if it is a living shim of this very container.
        Known::Pid(_) => match now {
            None => Liveness::Lost(Lost::Ended),
            Some(p) if p.zombie => Liveness::Lost(Lost::Ended),
            Some(_) if cmdline.is_some_and(|c| is_shim_for(c, container)) => Liveness::Alive,
            Some(_) => Liveness::Lost(Lost::Reused),
        },
    }
}

/// [`judge`] on what `procs` says now.
pub fn check(known: &Known, container: &str, procs: &dyn Processes) -> Liveness {
    let pid = known.pid();
    if pid <= 0 {
        return Liveness::Lost(Lost::Ended);
    }
    let boot = procs.boot_id();
    let now = procs.info(pid);
    // The command line is only needed (and only read) without a start time.
    let cmdline = match known {
        Known::Pid(_) if now.is_some() => procs.cmdline(pid),
        _ => None,
    };
    judge(known, container, boot.as_deref(), now.as_ref(), cmdline.as_deref())
}

/// A `/proc` that tests write: processes come, go, turn zombie, and the
/// host "reboots".
#[derive(Debug, Default)]
pub struct FakeProcesses {
    boot_id: Mutex<String>,
    procs: Mutex<HashMap<i32, (ProcessInfo, Vec<String>)>>,
}

impl FakeProcesses {
    pub fn new(boot_id: &str) -> Self {
        Self { boot_id: Mutex::new(boot_id.to_string()), procs: Mutex::default() }
    }

    /// A process appears at `pid` (replacing any other there).
    pub fn spawn(&self, pid: i32, start_time: u64, cmdline: &[&str]) {
        let info = ProcessInfo { start_time, zombie: false };
        self.procs_mut().insert(pid, (info, cmdline.iter().map(|s| s.to_string()).collect()));
    }

    pub fn exit(&self, pid: i32) {
        self.procs_mut().remove(&pid);
    }

    pub fn zombify(&self, pid: i32) {
        if let Some((info, _)) = self.procs_mut().get_mut(&pid) {
            info.zombie = true;
        }
    }

    /// A new boot: a new ID and no processes.
    pub fn reboot(&self, boot_id: &str) {
        *self.boot_id.lock().unwrap_or_else(|p| p.into_inner()) = boot_id.to_string();
        self.procs_mut().clear();
    }

    fn procs_mut(&self) -> std::sync::MutexGuard<'_, HashMap<i32, (ProcessInfo, Vec<String>)>> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Processes for FakeProcesses {
    fn boot_id(&self) -> Option<String> {
        Some(self.boot_id.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn info(&self, pid: i32) -> Option<ProcessInfo> {
        self.procs_mut().get(&pid).map(|(i, _)| i.clone())
    }

    fn cmdline(&self, pid: i32) -> Option<Vec<String>> {
        self.procs_mut().get(&pid).map(|(_, c)| c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTR: &str = "c0ffee";

    fn shim_cmdline(id: &str) -> Vec<&str> {
        vec!["/usr/bin/berth", "shim", "--id", id, "--bundle", "/b"]
    }

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (a) b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_stat(line), Some(ProcessInfo { start_time: 987_654, zombie: false }));
        let zombie = "7 (sh) Z 1 7 7 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert_eq!(parse_stat(zombie), Some(ProcessInfo { start_time: 55, zombie: true }));
        assert_eq!(parse_stat("7 (sh) S 1 2"), None, "too short");
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_real_proc_knows_this_process() {
        let procs = ProcFs::host();
        let me = std::process::id() as i32;
        let id = procs.identity(me).expect("this process has an identity");
        assert_eq!(check(&Known::Identity(id.clone()), CTR, &procs), Liveness::Alive);
        let older = ShimIdentity { start_time: id.start_time.saturating_sub(1), ..id.clone() };
        assert_eq!(check(&Known::Identity(older), CTR, &procs), Liveness::Lost(Lost::Reused));
        let other_boot = ShimIdentity { boot_id: "another-boot".into(), ..id };
        assert_eq!(check(&Known::Identity(other_boot), CTR, &procs), Liveness::Lost(Lost::Rebooted));
        // The test binary is no shim: a bare PID of it is not adopted.
        assert_eq!(check(&Known::Pid(me), CTR, &procs), Liveness::Lost(Lost::Reused));
    }

    #[test]
    fn a_shim_is_alive_only_with_the_same_pid_start_time_and_boot() {
        let procs = FakeProcesses::new("boot-1");
        procs.spawn(100, 5000, &shim_cmdline(CTR));
        let known = Known::Identity(procs.identity(100).unwrap());
        assert_eq!(check(&known, CTR, &procs), Liveness::Alive);

        procs.zombify(100);
        assert_eq!(check(&known, CTR, &procs), Liveness::Lost(Lost::Ended), "a zombie is gone");
        procs.exit(100);
        assert_eq!(check(&known, CTR, &procs), Liveness::Lost(Lost::Ended));
    }

    #[test]
    fn a_reused_pid_is_not_the_shim_even_when_it_looks_like_one() {
        let procs = FakeProcesses::new("boot-1");
        procs.spawn(100, 5000, &shim_cmdline(CTR));
        let known = Known::Identity(procs.identity(100).unwrap());
        procs.exit(100);
        // The PID comes back as another shim of the same container.
        procs.spawn(100, 7000, &shim_cmdline(CTR));
        assert_eq!(check(&known, CTR, &procs), Liveness::Lost(Lost::Reused));
    }

    #[test]
    fn after_a_reboot_every_shim_is_lost_whatever_holds_its_pid() {
        let procs = FakeProcesses::new("boot-1");
        procs.spawn(100, 5000, &shim_cmdline(CTR));
        let known = Known::Identity(procs.identity(100).unwrap());
        procs.reboot("boot-2");
        procs.spawn(100, 5000, &shim_cmdline(CTR));
        assert_eq!(check(&known, CTR, &procs), Liveness::Lost(Lost::Rebooted));
    }

    #[test]
    fn a_bare_pid_is_adopted_only_while_it_is_this_containers_shim() {
        let procs = FakeProcesses::new("boot-1");
        procs.spawn(100, 1, &shim_cmdline(CTR));
        assert_eq!(check(&Known::Pid(100), CTR, &procs), Liveness::Alive);
        procs.spawn(100, 1, &["/usr/libexec/berth-shim", "--id", CTR]);
        assert_eq!(check(&Known::Pid(100), CTR, &procs), Liveness::Alive, "the small shim binary");
        procs.spawn(100, 1, &shim_cmdline("another"));
        assert_eq!(check(&Known::Pid(100), CTR, &procs), Liveness::Lost(Lost::Reused), "another container's");
        procs.spawn(100, 1, &["nginx", "--id", CTR]);
        assert_eq!(check(&Known::Pid(100), CTR, &procs), Liveness::Lost(Lost::Reused), "not a shim");
        procs.zombify(100);
        assert_eq!(check(&Known::Pid(100), CTR, &procs), Liveness::Lost(Lost::Ended));
        procs.exit(100);
        assert_eq!(check(&Known::Pid(100), CTR, &procs), Liveness::Lost(Lost::Ended));
        assert_eq!(check(&Known::Pid(0), CTR, &procs), Liveness::Lost(Lost::Ended));
    }

    #[test]
    fn an_unreadable_boot_id_compares_the_rest() {
        let id = ShimIdentity { pid: 9, start_time: 10, boot_id: "b".into() };
        let now = ProcessInfo { start_time: 10, zombie: false };
        assert_eq!(judge(&Known::Identity(id.clone()), CTR, None, Some(&now), None), Liveness::Alive);
        assert_eq!(judge(&Known::Identity(id), CTR, Some("c"), Some(&now), None), Liveness::Lost(Lost::Rebooted));
    }
}

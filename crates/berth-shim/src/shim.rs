//! The shim process itself.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::identity::{ProcFs, Processes};
use crate::logfile::LogWriter;
use crate::protocol::{write_atomic, write_private, ExitRecord, StateDir};
use crate::runtime::Runc;

/// `berth shim` arguments, passed by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub log_path: PathBuf,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Files whose contents say whether the cgroup saw an OOM kill
    /// (`memory.oom_control` on v1, `memory.events` on v2).
    pub oom_files: Vec<PathBuf>,
    /// cgroup directories (one per hierarchy) the shim moves itself into
    /// before anything else, so it leaves the daemon's cgroup: stopping
    /// the daemon's service must not take the containers with it.
    pub cgroups: Vec<PathBuf>,
}

impl ShimArgs {
    /// The command line the daemon starts the shim with (after the program
    /// and, for `berth shim`, the subcommand); [`ShimArgs::parse`] reads it
    /// back. The one definition of the shim's arguments.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut out: Vec<std::ffi::OsString> = Vec::new();
        let mut flag = |name: &str, value: &std::ffi::OsStr| {
            out.push(name.into());
            out.push(value.to_owned());
        };
        flag("--id", self.id.as_ref());
        flag("--bundle", self.bundle.as_os_str());
        flag("--state-dir", self.state_dir.as_os_str());
        flag("--runtime", self.runtime.as_os_str());
        flag("--runtime-root", self.runtime_root.as_os_str());
        flag("--log", self.log_path.as_os_str());
        flag("--log-max-size", self.log_max_size.to_string().as_ref());
        flag("--log-max-files", self.log_max_files.to_string().as_ref());
        for f in &self.oom_files {
            flag("--oom-file", f.as_os_str());
        }
        for d in &self.cgroups {
            flag("--cgroup", d.as_os_str());
        }
        out
    }

    /// Reads what [`ShimArgs::to_args`] wrote: `--id ID --bundle DIR
    /// --state-dir DIR --runtime PATH --runtime-root DIR --log FILE`, and
    /// optionally `--log-max-size BYTES --log-max-files N --oom-file FILE...
    /// --cgroup DIR...`. The error says what is wrong.
    pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let (mut id, mut bundle, mut state, mut runtime, mut runtime_root, mut log) =
            (None, None, None, None, None, None);
        let (mut max_size, mut max_files, mut oom, mut cgroups) = (10u64 << 20, 3u32, Vec::new(), Vec::new());
        while let Some(flag) = args.next() {
            let flag = flag.to_string_lossy().to_string();
            let Some(value) = args.next() else { return Err(format!("{flag} needs a value")) };
            let number =
                |what: &str| value.to_str().and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{flag} takes {what}"));
            match flag.as_str() {
                "--id" => id = Some(value.to_string_lossy().to_string()),
                "--bundle" => bundle = Some(PathBuf::from(value)),
                "--state-dir" => state = Some(PathBuf::from(value)),
                "--runtime" => runtime = Some(PathBuf::from(value)),
                "--runtime-root" => runtime_root = Some(PathBuf::from(value)),
                "--log" => log = Some(PathBuf::from(value)),
                "--log-max-size" => max_size = number("a number of bytes")?,
                "--log-max-files" => {
                    max_files = u32::try_from(number("a number")?).map_err(|_| format!("{flag} is too large"))?
                }
                "--oom-file" => oom.push(PathBuf::from(value)),
                "--cgroup" => cgroups.push(PathBuf::from(value)),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        let (Some(id), Some(bundle), Some(state_dir), Some(runtime), Some(runtime_root), Some(log_path)) =
            (id, bundle, state, runtime, runtime_root, log)
        else {
            return Err("missing one of --id --bundle --state-dir --runtime --runtime-root --log".into());
        };
        Ok(Self {
            id,
            bundle,
            state_dir,
            runtime,
            runtime_root,
            log_path,
            log_max_size: max_size,
            log_max_files: max_files,
            oom_files: oom,
            cgroups,
        })
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Runs the shim to the end; returns the process exit code (0 when the
/// exit record was written, whatever the container's code).
///
/// The shim's stdout is a notice channel to the daemon that started it: a
/// line `started` once the process runs, then `exited` once the exit record
/// is on disk (so the daemon need not poll). A daemon that went away makes
/// these writes fail, which is fine: a restarted daemon reads the files.
pub fn run(args: ShimArgs) -> i32 {
    let state = StateDir(args.state_dir.clone());
    // Our own session: signals to the daemon's process group or terminal
    // never reach the shim or the container.
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // Before the runtime runs, so no process of this container is ever
    // left in the daemon's cgroup. A failure is noted for the daemon to
    // log; the container still runs.
    let failures = join_cgroups(&args.cgroups);
    if !failures.is_empty() {
        let _ = write_private(&state.cgroup_error(), failures.join("\n").as_bytes());
    }
    let me = std::process::id() as i32;
    let _ = write_atomic(&state.shim_pid(), me.to_string().as_bytes());
    if let Some(identity) = ProcFs::host().identity(me) {
        let _ = write_private(&state.shim_identity(), &serde_json::to_vec(&identity).expect("identity serialises"));
    }
    let (Ok(mut rec) | Err(mut rec)) = supervise(&args, &state);
    rec.shim_pid = Some(me);
    // A daemon killed while it started this shim may have started the
    // container again meanwhile, with a new shim in this directory: its
    // exit and its container are not ours to record or delete.
    if StateDir::read_pid(&state.shim_pid()) != Some(me) {
        return 0;
    }
    if state.write_exit(&rec).is_err() {
        return 1;
    }
    notify("exited");
    // After the notice: the daemon's bookkeeping and the runtime's cleanup
    // overlap; the daemon waits for this process before it removes anything.
    let runc = Runc::new(&args.runtime, &args.runtime_root);
    let _ = runc.command().args(["delete", "--force", &args.id]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    0
}

/// Moves this process into each cgroup directory, creating it if needed.
/// The daemon removes the directory whenever it sees it empty, so one that
/// vanishes between its creation and the move is made again (a few times).
/// Returns what failed, one line each.
fn join_cgroups(dirs: &[PathBuf]) -> Vec<String> {
    let me = std::process::id().to_string();
    let join = |dir: &PathBuf| {
        let mut tries = 0;
        loop {
            match fs::create_dir_all(dir).and_then(|()| fs::write(dir.join("cgroup.procs"), &me)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
                done => return done,
            }
        }
    };
    dirs.iter()
        .filter_map(|dir| join(dir).err().map(|e| format!("cannot move the shim into cgroup {}: {e}", dir.display())))
        .collect()
}

fn notify(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{what}").and_then(|()| out.flush());
}

fn failed(error: String) -> ExitRecord {
    ExitRecord { code: 127, signal: None, finished_at: now(), oom_killed: false, error: Some(error), shim_pid: None }
}

fn supervise(args: &ShimArgs, state: &StateDir) -> Result<ExitRecord, ExitRecord> {
    let runc = Runc::new(&args.runtime, &args.runtime_root);
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
    let log = LogWriter::open(&args.log_path, args.log_max_size, args.log_max_files)
        .map_err(|e| failed(format!("cannot open log {}: {e}", args.log_path.display())))?;
    let log = Arc::new(Mutex::new(log));

    // Readers first: the write ends live in the runtime, then only in the
    // container; each reader ends when the last holder closes its end.
    let readers = [spawn_reader(out_r, "stdout", Arc::clone(&log)), spawn_reader(err_r, "stderr", Arc::clone(&log))];

    // `run --detach` creates and starts in one runtime call; the container's
    // init is then re-parented to this process (a subreaper).
    let status = runc
        .command()
        .arg("--log")
        .arg(state.runtime_log())
        .args(["--log-format", "json", "run", "--detach", "--bundle"])
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(state.init_pid())
        .arg(&args.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .status()
        .map_err(|e| failed(format!("cannot run {}: {e}", args.runtime.display())))?;
    if !status.success() {
        let why =
            state.runtime_error().unwrap_or_else(|| format!("{} run exited with {status}", args.runtime.display()));
        return Err(failed(why));
    }
    let pid = StateDir::read_pid(&state.init_pid()).ok_or_else(|| failed("the runtime wrote no init pid".into()))?;
    let _ = write_atomic(&state.started(), b"");
    notify("started");

    let (code, signal) = reap(pid);
    // Output after init's exit (from processes it left behind) gets a short
    // grace period, so a shim never hangs on a pipe a daemon keeps open.
    let deadline = Instant::now() + Duration::from_secs(2);
    for r in readers {
        while !r.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(ExitRecord {
        code,
        signal,
        finished_at: now(),
        oom_killed: oom_killed(&args.oom_files),
        error: None,
        shim_pid: None,
    })
}

/// Reaps children until `pid` ends (as subreaper the shim inherits the
/// container's init once the runtime process exits). Returns (code, signal).
fn reap(pid: i32) -> (i32, Option<i32>) {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return (code, None),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == pid => return (128 + sig as i32, Some(sig as i32)),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            // No children left: init was reaped elsewhere or never ours.
            Err(_) => return (255, None),
        }
    }
}

fn spawn_reader(fd: OwnedFd, stream: &'static str, log: Arc<Mutex<LogWriter>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut file = fs::File::from(fd);
        let mut buf = vec![0u8; 16 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            // Whole lines go out as they come; a long line without a newline
            // is cut at 16 KiB so memory stays bounded.
            while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let _ = log.lock().unwrap_or_else(|p| p.into_inner()).write(stream, &String::from_utf8_lossy(&line));
            }
            if pending.len() >= 16 * 1024 {
                let chunk: Vec<u8> = std::mem::take(&mut pending);
                let _ = log.lock().unwrap_or_else(|p| p.into_inner()).write(stream, &String::from_utf8_lossy(&chunk));
            }
        }
        if !pending.is_empty() {
            let _ = log.lock().unwrap_or_else(|p| p.into_inner()).write(stream, &String::from_utf8_lossy(&pending));
        }
    })
}

fn oom_killed(files: &[PathBuf]) -> bool {
    files.iter().any(|f| oom_count(f) > 0)
}

/// `oom_kill N` in `memory.oom_control` (v1) or `memory.events` (v2).
fn oom_count(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())))
        .unwrap_or(0)
}

#[cfg(test)]
mod args_tests {
    use super::*;

    #[test]
    fn the_command_line_reads_back_as_written() {
        let args = ShimArgs {
            id: "abc".into(),
            bundle: "/b".into(),
            state_dir: "/s".into(),
            runtime: "/usr/sbin/runc".into(),
            runtime_root: "/run/berth/runtime".into(),
            log_path: "/l/c.log".into(),
            log_max_size: 1 << 20,
            log_max_files: 5,
            oom_files: vec!["/cg/memory.events".into()],
            cgroups: vec!["/cg/a".into(), "/cg/b".into()],
        };
        assert_eq!(ShimArgs::parse(args.to_args()), Ok(args.clone()));
        let short: Vec<std::ffi::OsString> = args.to_args().into_iter().take(12).collect();
        let defaults = ShimArgs::parse(short).unwrap();
        assert_eq!((defaults.log_max_size, defaults.log_max_files), (10 << 20, 3));
        for (bad, why) in [
            (vec!["--id"], "--id needs a value"),
            (vec!["--id", "x"], "missing one of"),
            (vec!["--what", "x"], "unknown argument --what"),
            (vec!["--log-max-files", "many"], "--log-max-files takes a number"),
        ] {
            let e = ShimArgs::parse(bad.into_iter().map(std::ffi::OsString::from)).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}

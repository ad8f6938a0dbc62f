//! `berth-shim`: the per-container shim as a small program of its own, so
//! each running container costs little memory. The daemon uses it when it
//! is installed next to `berth`, else `berth shim` (the same code).
//!
//! Arguments (all required unless noted): `--id ID --bundle DIR
//! --state-dir DIR --runtime PATH --runtime-root DIR --log FILE`, and
//! optionally `--log-max-size BYTES --log-max-files N --oom-file FILE...
//! --cgroup DIR...`.

use std::path::PathBuf;
use std::process::ExitCode;

fn usage(why: &str) -> ExitCode {
    eprintln!("berth-shim: {why}; it is started by the berth daemon, see 'berth daemon --help'");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut id, mut bundle, mut state, mut runtime, mut runtime_root, mut log) = (None, None, None, None, None, None);
    let (mut max_size, mut max_files, mut oom, mut cgroups) = (10u64 << 20, 3u32, Vec::new(), Vec::new());
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else { return usage(&format!("{flag} needs a value")) };
        match flag.as_str() {
            "--id" => id = Some(value),
            "--bundle" => bundle = Some(PathBuf::from(value)),
            "--state-dir" => state = Some(PathBuf::from(value)),
            "--runtime" => runtime = Some(PathBuf::from(value)),
            "--runtime-root" => runtime_root = Some(PathBuf::from(value)),
            "--log" => log = Some(PathBuf::from(value)),
            "--log-max-size" => match value.parse() {
                Ok(v) => max_size = v,
                Err(_) => return usage("--log-max-size takes a number of bytes"),
            },
            "--log-max-files" => match value.parse() {
                Ok(v) => max_files = v,
                Err(_) => return usage("--log-max-files takes a number"),
            },
            "--oom-file" => oom.push(PathBuf::from(value)),
            "--cgroup" => cgroups.push(PathBuf::from(value)),
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let (Some(id), Some(bundle), Some(state_dir), Some(runtime), Some(runtime_root), Some(log_path)) =
        (id, bundle, state, runtime, runtime_root, log)
    else {
        return usage("missing one of --id --bundle --state-dir --runtime --runtime-root --log");
    };
    let code = berth_shim::run(berth_shim::ShimArgs {
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
    });
    ExitCode::from(code as u8)
}

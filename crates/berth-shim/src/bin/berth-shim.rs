//! `berth-shim`: the per-container shim as a small program of its own, so
//! each running container costs little memory. The daemon uses it when it
//! is installed next to `berth`, else `berth shim` (the same code).
//!
//! Arguments (all required unless noted): `--id ID --bundle DIR
//! --state-dir DIR --runtime PATH --runtime-root DIR --log FILE`, and
//! optionally `--log-max-size BYTES --log-max-files N --oom-file FILE...
//! --cgroup DIR...`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match berth_shim::ShimArgs::parse(std::env::args_os().skip(1)) {
        Ok(args) => ExitCode::from(berth_shim::run(args) as u8),
        Err(why) => {
            eprintln!("berth-shim: {why}; it is started by the berth daemon, see 'berth daemon --help'");
            ExitCode::from(2)
        }
    }
}

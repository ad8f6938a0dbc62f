//! The one `berth` binary: the daemon and the CLI. Thin on purpose; the
//! work lives in the crates it dispatches to.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_cli::{Cli, Command, DaemonArgs};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The shim runs once per container: no async runtime, no extra threads.
    if let Command::Shim(a) = cli.command {
        return match berth_shim::ShimArgs::parse(a.args) {
            Ok(args) => ExitCode::from(berth_shim::run(args) as u8),
            Err(why) => {
                eprintln!("berth shim: {why}; it is started by the berth daemon, see 'berth daemon --help'");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match cli.command {
        Command::Daemon(args) => match runtime.block_on(daemon(args, cli.socket)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("berth daemon: {e:#}");
                1
            }
        },
        _ => runtime.block_on(berth_cli::run(cli)),
    };
    ExitCode::from(code as u8)
}

async fn daemon(args: DaemonArgs, socket_flag: PathBuf) -> anyhow::Result<()> {
    let explicit = args.config.is_some();
    let config_path = args.config.unwrap_or_else(|| PathBuf::from("/etc/berth/config.toml"));
    let config = berth_daemon::DaemonConfig::load(&config_path, explicit)?;
    init_logging(&config.log);
    // The socket lives in the run root unless --socket/BERTH_SOCKET moved it.
    let socket = if socket_flag == std::path::Path::new(berth_cli::args::DEFAULT_SOCKET) {
        args.run_root.join("berth.sock")
    } else {
        socket_flag
    };
    let opts = berth_daemon::DaemonOptions { root: args.root, run_root: args.run_root, socket: socket.clone(), config };
    let daemon = berth_daemon::Daemon::open(&opts)?;
    daemon.serve(&socket).await
}

fn init_logging(cfg: &berth_daemon::config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cfg.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

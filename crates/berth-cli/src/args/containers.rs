//! Arguments of the container verbs: run, create, exec, stop, ps, logs.

use super::*;
use berth_core::container::RestartPolicy;

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name (unique; default: a generated one).
    #[arg(long)]
    pub name: Option<String>,
    /// Network to join: a network's name (repeatable), or none, host, or
    /// container:NAME to share that container's network namespace.
    /// Default: the default network.
    #[arg(long = "network", visible_alias = "net")]
    pub networks: Vec<String>,
    /// Publish a port: [HOSTIP:][HOSTPORT:]CTRPORT[/tcp|udp] (repeatable;
    /// no HOSTPORT: a free one is picked).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a free host port.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Another name for the container in the networks' DNS (repeatable).
    #[arg(long = "network-alias")]
    pub network_aliases: Vec<String>,
    /// Environment KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read KEY=VALUE lines from a file (repeatable; # comments allowed).
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Bind mount HOST:CONTAINER[:ro|rw] (repeatable).
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// tmpfs mount CONTAINER[:OPTIONS] (repeatable).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// USER[:GROUP] or UID[:GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// Replace the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Label KEY=VALUE (repeatable).
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// no, always, unless-stopped, on-failure[:MAX_RETRIES].
    #[arg(long, default_value = "no", value_parser = parse_restart)]
    pub restart: RestartPolicy,
    /// Memory limit, e.g. 256m or 1g.
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap, e.g. 512m; -1 for unlimited swap.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// CPUs, e.g. 1.5.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Relative CPU weight (default 1024).
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    /// Most processes at once (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// User namespace: auto (root inside is an unprivileged host uid from
    /// the daemon's range) or host (share the host's ids; the default).
    #[arg(long, value_parser = ["auto", "host"])]
    pub userns: Option<String>,
    /// Add a capability (repeatable; ALL for all).
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability (repeatable; ALL for all).
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// seccomp=unconfined|PATH, no-new-privileges[=false] (repeatable).
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Give the container every capability and device, no seccomp, no masked paths.
    #[arg(long)]
    pub privileged: bool,
    /// Signal for stop (default: the image's, else SIGTERM).
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds stop waits before SIGKILL (default 10).
    #[arg(long)]
    pub stop_timeout: Option<u32>,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    pub image: String,
    /// Command and arguments (replace the image's Cmd).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Pass standard input to the command.
    #[arg(short, long)]
    pub interactive: bool,
    /// Run the command on a pseudo-terminal; with -i an interactive session
    /// (keys, Ctrl-C and window size pass through; needs a terminal).
    #[arg(short, long)]
    pub tty: bool,
    /// Environment KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// USER[:GROUP] or UID[:GID].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// With pod/NAME or deploy/NAME: which of the pod's containers
    /// (default: its first).
    #[arg(short = 'c', long = "container", value_name = "NAME")]
    pub in_container: Option<String>,
    /// With pod/NAME or deploy/NAME: the namespace [default: default].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// A container's name or id; or pod/NAME; or deploy/NAME or svc/NAME
    /// for one of their running pods.
    #[arg(value_name = "CONTAINER|pod/NAME|deploy/NAME")]
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL.
    #[arg(short = 't', long = "time")]
    pub timeout: Option<u32>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following new output.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (-n as in docker; the namespace is --namespace).
    #[arg(long, short = 'n', value_parser = tail_lines)]
    pub tail: Option<usize>,
    /// Only output since an RFC 3339 time or a duration ago (10s, 5m, 2h).
    #[arg(long)]
    pub since: Option<String>,
    /// Prefix each line with its time.
    #[arg(short, long)]
    pub timestamps: bool,
    /// With pod/NAME or deploy/NAME: which of the pod's containers
    /// (default: its first).
    #[arg(short = 'c', long = "container", value_name = "NAME")]
    pub in_container: Option<String>,
    /// With pod/NAME or deploy/NAME: the namespace [default: default].
    /// (-n is --tail here, as in docker.)
    #[arg(long)]
    pub namespace: Option<String>,
    /// A container's name or id; or pod/NAME; or deploy/NAME or svc/NAME
    /// for one of their running pods.
    #[arg(value_name = "CONTAINER|pod/NAME|deploy/NAME")]
    pub container: String,
}

/// `--tail`/`-n`: a line count. Someone used to kubectl may mean a
/// namespace; say where that went.
fn tail_lines(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not a number of lines (-n is --tail, as in docker; for a namespace write --namespace {s})")
    })
}

fn parse_restart(s: &str) -> Result<RestartPolicy, String> {
    s.parse().map_err(|e: berth_core::container::ContainerError| e.to_string())
}

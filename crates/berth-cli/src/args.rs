//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A container platform for one Linux host",
    long_about = "Berth runs OCI containers and declared services on one Linux host.\n\nStart the daemon with 'berth daemon' (as root); every other command is a client of it.",
    propagate_version = true
)]
pub struct Cli {
    /// The daemon's API socket.
    #[arg(long, global = true, env = "BERTH_SOCKET", default_value = DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
    Wide,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (as root): owns all state and serves the API.
    Daemon(DaemonArgs),
    /// Show CLI and daemon versions.
    Version {
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Pull an image from a registry (mirrors first, as configured).
    Pull(PullArgs),
    /// Push an image to the registry its name points at.
    Push(PushArgs),
    /// List images.
    Images(ListArgs),
    /// Remove images (untags when other tags remain).
    Rmi(RemoveArgs),
    /// Give an image another name: berth tag SOURCE TARGET.
    Tag { source: String, target: String },
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Save credentials for a registry (checked against it first; stored 0600).
    Login(LoginArgs),
    /// Forget saved credentials for a registry.
    Logout { registry: String },
    /// Host-wide information.
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage networks: bridges with their own subnet, DNS and published ports.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage service VIPs: a virtual address and port spread over weighted backends.
    #[command(subcommand)]
    Vip(VipCommand),
    /// Create and start a container; in the foreground its output streams and berth exits with its code.
    Run(RunArgs),
    /// Create a container without starting it.
    Create(CreateArgs),
    /// Start containers.
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop containers: the stop signal, a grace period, then SIGKILL.
    Stop(StopArgs),
    /// Send a signal to containers (default SIGKILL).
    Kill {
        #[arg(short, long, default_value = "SIGKILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop (if needed) and start containers again.
    Restart(StopArgs),
    /// Remove containers.
    Rm {
        /// Kill running containers first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container (its DNS name follows at once).
    Rename { container: String, new_name: String },
    /// List containers.
    Ps(PsArgs),
    /// Show a container's output; or a pod's, or a deployment's (one of its pods).
    Logs(LogsArgs),
    /// Show a container's (or, failing that, an image's) details.
    Inspect {
        name: String,
        #[arg(short, long, value_enum, default_value = "json")]
        output: Output,
    },
    /// Wait for containers to stop and print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show containers' CPU, memory, pids and block I/O (from their cgroups).
    Stats {
        /// Print one sample and exit.
        #[arg(long)]
        no_stream: bool,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
        /// Containers (default: all running ones).
        containers: Vec<String>,
    },
    /// Run a command in a running container (or a pod's, or a deployment's); berth exits with its exit code.
    Exec(ExecArgs),
    /// Show a container's processes.
    Top {
        container: String,
        /// ps options (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Stream lifecycle events (recorded ones with --since, then live ones).
    Events {
        /// Replay from a time (RFC 3339) or a duration ago (10s, 5m, 2h).
        #[arg(long)]
        since: Option<String>,
        /// Stop at a time or duration from now instead of streaming on.
        #[arg(long)]
        until: Option<String>,
        /// KEY=VALUE with KEY type, event, container or image (repeatable).
        #[arg(short, long)]
        filter: Vec<String>,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Create or update declared objects from manifests (as kubectl apply).
    ///
    /// Every file is checked by the daemon before anything changes; then each
    /// object is created, updated or left alone, one line per object:
    /// 'deployment.apps/web created', 'service/web unchanged'.
    Apply(ApplyArgs),
    #[command(
        about = "List declared objects, or show some by name (as kubectl get)",
        long_about = "List declared objects, or show some by name (as kubectl get).\n\n\
            Types: pods (po), deployments (deploy), services (svc), endpoints (ep), configmaps (cm), \
            secrets, events (ev).",
        after_help = "Examples:\n  berth get pods\n  berth get deploy web -o yaml\n  \
            berth get pod/web-5d8f7-abcde svc/web\n  berth get deploy,svc -A\n  berth get pods -l app=web -o wide"
    )]
    Get(GetArgs),
    /// Show declared objects in detail, with their recent events (as kubectl describe).
    ///
    /// A NAME that matches no object exactly shows every object whose name
    /// starts with it (so 'berth describe pods web' shows web's pods).
    Describe(DescribeArgs),
    /// Delete declared objects named in manifests (-f) or on the command line (as kubectl delete).
    ///
    /// Deleting a deployment removes its pods; deleting one of its pods
    /// makes the deployment start a replacement.
    Delete(DeleteArgs),
    /// Set a deployment's number of replicas: berth scale deploy/web --replicas 3.
    Scale(ScaleArgs),
    /// Follow, pause, resume, restart or undo a deployment's rollout (as kubectl rollout).
    ///
    /// Every change to a deployment's pod template is a new revision, rolled
    /// out by replacing its pods a few at a time.
    #[command(
        subcommand,
        after_help = "Examples:\n  berth rollout status deploy/web\n  berth rollout history deploy/web --revision 2\n  \
            berth rollout undo deploy/web --to-revision 1\n  berth rollout restart deployment web -n shop"
    )]
    Rollout(RolloutCommand),
    /// Internal: the per-container shim, started by the daemon.
    #[command(hide = true)]
    Shim(ShimCommand),
}

#[derive(Debug, Args)]
pub struct ShimCommand {
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub bundle: PathBuf,
    #[arg(long)]
    pub state_dir: PathBuf,
    #[arg(long)]
    pub runtime: PathBuf,
    #[arg(long)]
    pub runtime_root: PathBuf,
    #[arg(long)]
    pub log: PathBuf,
    #[arg(long, default_value_t = 10 << 20)]
    pub log_max_size: u64,
    #[arg(long, default_value_t = 3)]
    pub log_max_files: u32,
    #[arg(long)]
    pub oom_file: Vec<PathBuf>,
    #[arg(long)]
    pub cgroup: Vec<PathBuf>,
}

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
    #[arg(long, default_value = "no")]
    pub restart: String,
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

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// State root: blobs, layers, the database.
    #[arg(long, default_value = "/var/lib/berth", value_name = "DIR")]
    pub root: PathBuf,
    /// Runtime directory: the API socket and per-run state.
    #[arg(long, default_value = "/run/berth", value_name = "DIR")]
    pub run_root: PathBuf,
    /// Configuration file (TOML). Optional unless given explicitly.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference, e.g. registry.example.org/team/app:1.2
    pub reference: String,
    /// Platform OS/ARCH[/VARIANT] to pick from a multi-platform image (default: this host's).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image digest.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    pub reference: String,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Output,
    /// Print only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even if containers use the image.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host[:port] (docker.io for Docker Hub).
    pub registry: String,
    #[arg(short, long)]
    pub username: String,
    /// Password (prefer --password-stdin: arguments show up in ps).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    Ls(ListArgs),
    /// Show an image's details.
    Inspect {
        image: String,
        #[arg(short, long, value_enum, default_value = "json")]
        output: Output,
    },
    /// Import an OCI layout directory, OCI archive, docker-save tar, or a root filesystem directory or tar.
    Import(ImportArgs),
    /// Write an image as an OCI archive.
    Export {
        image: String,
        /// Where to write the archive (must not exist).
        path: PathBuf,
    },
    /// Pull an image (same as 'berth pull').
    Pull(PullArgs),
    /// Push an image (same as 'berth push').
    Push(PushArgs),
    /// Remove images (same as 'berth rmi').
    Rm(RemoveArgs),
    /// Tag an image (same as 'berth tag').
    Tag { source: String, target: String },
    /// Remove untagged images and every blob and layer nothing uses.
    Prune {
        /// Remove all images no container uses, not only untagged ones.
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub path: PathBuf,
    /// Name for the image (required for root filesystems).
    #[arg(long, short)]
    pub tag: Option<String>,
    /// Image command, as a JSON array or a shell-split string (rootfs imports).
    #[arg(long)]
    pub config_cmd: Option<String>,
    /// Image entrypoint, as a JSON array or a shell-split string (rootfs imports).
    #[arg(long)]
    pub config_entrypoint: Option<String>,
    /// Environment KEY=VALUE (repeatable; rootfs imports).
    #[arg(long)]
    pub config_env: Vec<String>,
    /// Working directory (rootfs imports).
    #[arg(long)]
    pub config_workdir: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show the audit log, newest first: every mutating API call and every
    /// read of a log, the events or a Secret; who made it, what was asked
    /// (redacted) and how it ended.
    Audit {
        /// Only calls since this time (RFC 3339, or a duration like 10m).
        #[arg(long)]
        since: Option<String>,
        /// The most entries to show.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Show disk usage, and what shared layers save.
    Df {
        /// One row per image with its shared and unique bytes.
        #[arg(short, long)]
        verbose: bool,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create {
        name: String,
        /// CIDR, e.g. 10.90.0.0/24 (default: the next free block of the pool).
        #[arg(long)]
        subnet: Option<String>,
        /// The bridge's address (default: the subnet's first host).
        #[arg(long)]
        gateway: Option<String>,
        /// No traffic in or out except from the host itself.
        #[arg(long)]
        internal: bool,
        #[arg(long)]
        mtu: Option<u32>,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Show a network and its containers.
    Inspect {
        name: String,
        #[arg(short, long, value_enum, default_value = "json")]
        output: Output,
    },
    /// Connect a running container to a network (one more interface).
    Connect {
        network: String,
        container: String,
        /// Another name for the container in this network's DNS (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
    },
    /// Disconnect a running container from a network.
    Disconnect { network: String, container: String },
    /// Remove networks no container uses.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum VipCommand {
    /// Create a VIP (no backends yet: connections are refused until set).
    Create {
        name: String,
        #[arg(long)]
        port: u16,
        /// Default: the next free address of the service range.
        #[arg(long)]
        ip: Option<String>,
        #[arg(long, default_value = "tcp")]
        protocol: String,
    },
    /// Replace the backends in one atomic change: IP:PORT=WEIGHT ..., weights summing to 100
    /// (none: no backend, connections are refused).
    Set { name: String, backends: Vec<String> },
    /// Show a VIP, its backends' weights and their connections (from conntrack).
    Show {
        name: String,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// List VIPs.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Remove VIPs.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// How `get` prints objects (default: a table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectOutput {
    /// The table with more columns.
    Wide,
    /// The object (one name) or a List, as JSON.
    Json,
    /// The same, as YAML.
    Yaml,
    /// KIND/NAME per object, e.g. pod/web-5d8f7-abcde.
    Name,
}

#[derive(Debug, Args)]
pub struct NamespaceArg {
    /// The namespace of the objects.
    #[arg(short = 'n', long, default_value = "default", value_name = "NS")]
    pub namespace: String,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A manifest file, a directory (its *.yaml, *.yml and *.json files,
    /// not subdirectories), or - for standard input (repeatable).
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE|DIR|-")]
    pub files: Vec<PathBuf>,
    /// Check everything and report what would change, changing nothing.
    /// (=client and =server mean the same here: the daemon checks.)
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true, default_missing_value = "server",
          value_parser = ["none", "client", "server"])]
    pub dry_run: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// TYPE[,TYPE...] [NAME...], or TYPE/NAME...
    #[arg(required = true, value_name = "TYPE[/NAME]")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub namespace: NamespaceArg,
    /// Objects of every namespace (adds a NAMESPACE column).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only objects whose labels match, e.g. app=web,tier!=db or 'env in (a,b)'.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// How to print them (default: a table).
    #[arg(short, long, value_enum)]
    pub output: Option<ObjectOutput>,
    /// Include secrets' values (base64, as Kubernetes stores them) in -o json|yaml.
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// TYPE [NAME...] or TYPE/NAME...
    #[arg(required = true, value_name = "TYPE[/NAME]")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub namespace: NamespaceArg,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Delete the objects these manifests name (file, directory or -; repeatable).
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-", conflicts_with_all = ["targets", "selector"])]
    pub files: Vec<PathBuf>,
    /// TYPE NAME..., or TYPE/NAME...
    #[arg(required_unless_present = "files", value_name = "TYPE[/NAME]")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub namespace: NamespaceArg,
    /// Delete every object of the type whose labels match (instead of names).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Objects that do not exist are not an error.
    #[arg(long)]
    pub ignore_not_found: bool,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// deploy/NAME... or rollout/NAME..., or KIND NAME...
    #[arg(required = true, value_name = "deploy/NAME")]
    pub targets: Vec<String>,
    /// The number of pods to run.
    #[arg(long, required = true)]
    pub replicas: u32,
    #[command(flatten)]
    pub namespace: NamespaceArg,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show a rollout's progress; by default wait until it completes or fails.
    ///
    /// Prints a line each time the progress changes, then exits 0 when every
    /// replica runs the new revision and is available, or 1 when the rollout
    /// failed (a deployment's progress deadline passed or berth rolled it
    /// back; an Argo Rollout was aborted). A paused rollout is reported once
    /// and waited for.
    Status(RolloutStatusArgs),
    /// List a deployment's revisions, or show one revision's pod template.
    History(RolloutHistoryArgs),
    /// Stop rolling out: template changes wait until 'berth rollout resume'.
    Pause(RolloutTarget),
    /// Continue a paused rollout: changes made while paused roll out now.
    Resume(RolloutTarget),
    /// Replace every pod of the deployment, a few at a time, with the same template.
    Restart(RolloutTarget),
    /// Go back to an earlier revision (by default the previous one).
    ///
    /// The revision's template is rolled out as a new revision, as in
    /// Kubernetes.
    Undo(RolloutUndoArgs),
    /// Argo Rollouts: go on past the pause (or inconclusive analysis) the
    /// rollout waits at; a blue-green rollout switches its active Service.
    ///
    /// With --full, skip every remaining step and analysis: the new revision
    /// takes all traffic as soon as its pods are available. Refused when
    /// the rollout is not paused (use --full to skip steps anyway).
    Promote(RolloutPromoteArgs),
    /// Argo Rollouts: stop the update and send all traffic back to the
    /// stable revision in one step; the new revision's pods go.
    ///
    /// The rollout stays aborted (status exits 1) until a new template is
    /// applied or 'berth rollout resume' retries it.
    Abort(RolloutTarget),
}

/// The deployment or Argo Rollout a rollout command acts on.
#[derive(Debug, Args)]
pub struct RolloutTarget {
    /// deploy/NAME or rollout/NAME, or KIND NAME (deployment, rollout, ro
    /// and the plurals work too).
    #[arg(required = true, num_args = 1..=2, value_name = "KIND/NAME")]
    pub target: Vec<String>,
    #[command(flatten)]
    pub namespace: NamespaceArg,
}

#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    #[command(flatten)]
    pub target: RolloutTarget,
    /// Wait for the rollout to finish (--watch=false: print the progress once
    /// and exit 0 unless it failed).
    #[arg(short, long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub watch: bool,
    /// Give up waiting after this long, e.g. 30s, 5m or 1h30m (exit 1);
    /// 0 or unset: wait as long as it takes.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct RolloutHistoryArgs {
    #[command(flatten)]
    pub target: RolloutTarget,
    /// Show this revision's pod template instead of the list.
    #[arg(long, value_name = "N")]
    pub revision: Option<u64>,
    /// Print the revisions (or the one revision) as JSON or YAML.
    #[arg(short, long, value_enum)]
    pub output: Option<DataOutput>,
}

#[derive(Debug, Args)]
pub struct RolloutPromoteArgs {
    #[command(flatten)]
    pub target: RolloutTarget,
    /// Skip every remaining step and analysis.
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct RolloutUndoArgs {
    #[command(flatten)]
    pub target: RolloutTarget,
    /// The revision to go back to (see 'berth rollout history'); 0 or unset:
    /// the one before the current.
    #[arg(long, value_name = "N")]
    pub to_revision: Option<u64>,
}

/// Structured output only, for commands without a table form of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataOutput {
    Json,
    Yaml,
}

/// A duration as kubectl writes it: one or more NUMBER+UNIT parts with
/// units ms, s, m, h (`30s`, `1h30m`, `1.5s`), or `0`.
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?} is not a duration; write e.g. 30s, 5m, 1h30m or 500ms");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = tail;
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())).unwrap().command
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn declared_verbs() {
        let Command::Get(g) = parse(&["get", "pods", "-A", "-l", "app=web", "-o", "wide"]) else { panic!() };
        assert!(g.all_namespaces);
        assert_eq!(
            (g.targets, g.selector, g.output),
            (vec!["pods".to_string()], Some("app=web".into()), Some(ObjectOutput::Wide))
        );
        assert_eq!(g.namespace.namespace, "default");
        let Command::Apply(a) = parse(&["apply", "-f", "a.yaml", "-f", "dir", "--dry-run"]) else { panic!() };
        assert_eq!((a.files.len(), a.dry_run.as_deref()), (2, Some("server")));
        let Command::Apply(a) = parse(&["apply", "--dry-run=none", "-f", "-"]) else { panic!() };
        assert_eq!(a.dry_run.as_deref(), Some("none"));
        let Command::Delete(d) = parse(&["delete", "deploy", "web", "-n", "shop", "--ignore-not-found"]) else {
            panic!()
        };
        assert_eq!((d.targets.len(), d.namespace.namespace.as_str(), d.ignore_not_found), (2, "shop", true));
        assert!(Cli::try_parse_from(["berth", "delete", "-f", "x.yaml", "pod", "a"]).is_err());
        assert!(Cli::try_parse_from(["berth", "delete"]).is_err());
        let Command::Scale(s) = parse(&["scale", "deploy/web", "--replicas", "3"]) else { panic!() };
        assert_eq!(s.replicas, 3);
        assert!(Cli::try_parse_from(["berth", "scale", "deploy/web"]).is_err());
    }

    #[test]
    fn logs_and_exec_take_pods_and_deployments() {
        let Command::Logs(l) = parse(&["logs", "deploy/web", "-c", "app", "--namespace", "shop", "-n", "5", "-f"])
        else {
            panic!()
        };
        assert_eq!((l.container.as_str(), l.in_container.as_deref()), ("deploy/web", Some("app")));
        assert_eq!((l.namespace.as_deref(), l.tail, l.follow), (Some("shop"), Some(5), true));
        let e = Cli::try_parse_from(["berth", "logs", "-n", "shop", "deploy/web"]).unwrap_err().to_string();
        assert!(e.contains("-n is --tail"), "{e}");
        let Command::Exec(x) =
            parse(&["exec", "-it", "-n", "shop", "-c", "app", "pod/web-abc", "--", "sh", "-c", "ls"])
        else {
            panic!()
        };
        assert_eq!((x.namespace.as_deref(), x.in_container.as_deref()), (Some("shop"), Some("app")));
        assert_eq!((x.container.as_str(), x.command.len(), x.tty), ("pod/web-abc", 3, true));
    }

    #[test]
    fn rollout_commands() {
        let Command::Rollout(RolloutCommand::Status(s)) = parse(&["rollout", "status", "deploy/web"]) else { panic!() };
        assert_eq!((s.target.target, s.watch, s.timeout), (vec!["deploy/web".to_string()], true, None));
        assert_eq!(s.target.namespace.namespace, "default");
        let Command::Rollout(RolloutCommand::Status(s)) =
            parse(&["rollout", "status", "deployment", "web", "--watch=false", "--timeout", "1m30s", "-n", "shop"])
        else {
            panic!()
        };
        assert_eq!(s.target.target, ["deployment", "web"]);
        assert_eq!((s.watch, s.timeout), (false, Some(std::time::Duration::from_secs(90))));
        assert_eq!(s.target.namespace.namespace, "shop");
        let Command::Rollout(RolloutCommand::Status(s)) = parse(&["rollout", "status", "-w", "deploy/web"]) else {
            panic!()
        };
        assert!(s.watch);
        let Command::Rollout(RolloutCommand::History(h)) =
            parse(&["rollout", "history", "deploy/web", "--revision", "2", "-o", "yaml"])
        else {
            panic!()
        };
        assert_eq!((h.revision, h.output), (Some(2), Some(DataOutput::Yaml)));
        let Command::Rollout(RolloutCommand::Undo(u)) = parse(&["rollout", "undo", "deploy/web", "--to-revision=1"])
        else {
            panic!()
        };
        assert_eq!(u.to_revision, Some(1));
        for verb in ["pause", "resume", "restart"] {
            assert!(Cli::try_parse_from(["berth", "rollout", verb, "deploy/web"]).is_ok(), "{verb}");
        }
    }

    #[test]
    fn rollout_argument_errors() {
        for bad in [
            &["rollout", "status"][..],
            &["rollout", "status", "deploy", "web", "extra"],
            &["rollout", "status", "deploy/web", "--watch=maybe"],
            &["rollout", "status", "deploy/web", "--timeout", "soon"],
            &["rollout", "history", "deploy/web", "-o", "wide"],
            &["rollout", "history", "deploy/web", "--revision", "-1"],
            &["rollout", "undo", "deploy/web", "--to-revision", "x"],
            &["rollout", "frobnicate", "deploy/web"],
            &["rollout", "pause", "deploy/web", "--watch"],
        ] {
            assert!(Cli::try_parse_from(std::iter::once("berth").chain(bad.iter().copied())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_as_kubectl_writes_them() {
        use std::time::Duration;
        for (text, want) in [
            ("0", Duration::ZERO),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
        ] {
            assert_eq!(duration(text), Ok(want), "{text}");
        }
        for bad in ["", "30", "s", "5d", "1h30", "-1s", "1..5s", "abc"] {
            let e = duration(bad).unwrap_err();
            assert!(e.contains("is not a duration; write e.g. 30s"), "{bad}: {e}");
        }
    }
}

//! Command-line grammar: the verbs here, their arguments by noun in the
//! files beside this one.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod containers;
mod declared;
mod images;
mod networks;
mod system;

pub use containers::*;
pub use declared::*;
pub use images::*;
pub use networks::*;
pub use system::*;

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

/// The shim's own arguments, read by `berth_shim::ShimArgs::parse` (their
/// one definition).
#[derive(Debug, Args)]
pub struct ShimCommand {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<std::ffi::OsString>,
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

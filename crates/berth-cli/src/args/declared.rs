//! Arguments of the kubectl-like verbs for declared state: apply, get,
//! describe, delete, scale, rollout.

use super::*;

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

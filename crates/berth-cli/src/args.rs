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
    /// Show disk usage, and what shared layers save.
    Df {
        /// One row per image with its shared and unique bytes.
        #[arg(short, long)]
        verbose: bool,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
}

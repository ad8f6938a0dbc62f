//! Arguments of the image verbs: pull, push, images, rmi, login, and the
//! `image` noun group.

use super::*;

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

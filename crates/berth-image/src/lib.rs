//! Berth's image store.
//!
//! Design: blobs are content-addressed files under `<root>/images/blobs/sha256/`,
//! written to a temporary file in the same filesystem while being hashed and
//! renamed into place only once the digest matches, so nothing unverified is
//! ever visible under a blob's name. What the blobs mean (tags, images,
//! layers and their unpacked sizes) lives in the store, written after the
//! blobs in one transaction, so a crash leaves at worst unreferenced blobs
//! that `prune` collects. Each layer unpacks once into its own directory with
//! whiteouts turned into overlayfs form; a container root is an overlay of
//! those directories plus a private upper directory.
//!
//! Layer contents are untrusted: the unpacker refuses escaping paths, links
//! that lead out, device nodes and archives past the configured size.
//!
//! It must never write outside its root (except the mount point a caller
//! asks a snapshot for), and never follow a symlink that came from a layer.

pub mod auth;
pub mod blobs;
pub mod config;
pub mod error;
mod export;
mod fetch;
pub mod import;
pub mod manifest;
pub mod mounts;
mod operation;
pub mod progress;
mod pull;
mod push;
mod registry;
mod rootfs;
pub mod snapshot;
pub mod store;
pub mod tarstream;
pub mod unpack;

pub use config::ImageConfig;
pub use error::ImageError;
pub use mounts::{FakeMounts, KernelMounts, Mounts};
pub use progress::Progress;
pub use store::{ImageStore, ImageUsers, NoUsers};

//! The image store's errors. Each says what failed and, where there is one,
//! what to do about it.

use std::path::Path;

use berth_core::{MediaTypeError, ReferenceError};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("no such image: {reference}; see 'berth images' for what is stored, or 'berth pull {reference}'")]
    NotFound { reference: String },
    #[error("image name {prefix:?} is ambiguous: it matches {count} images; give more of the ID")]
    Ambiguous { prefix: String, count: usize },
    #[error("manifest unknown: {reference} is not in registry {registry}; check the name and tag")]
    ManifestUnknown { reference: String, registry: String },
    #[error("registry {registry} is unreachable: {detail}; check the address, or configure a mirror")]
    Unreachable { registry: String, detail: String },
    #[error("registry {registry} requires credentials for {reference}; run 'berth login {registry}'")]
    AuthRequired { registry: String, reference: String },
    #[error(
        "registry {registry} refused the credentials{user}: {detail}; run 'berth login {registry}' with valid ones"
    )]
    Unauthorized { registry: String, user: String, detail: String },
    #[error("registry {registry} answered with an error: {detail}")]
    Registry { registry: String, detail: String },
    #[error("registry {registry} would need plain HTTP, which berth uses only for loopback registries or ones listed under insecure_registries in the config")]
    InsecureNotAllowed { registry: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}; the content was altered or corrupted, nothing was stored")]
    DigestMismatch { what: String, expected: String, actual: String },
    #[error("size mismatch for blob {digest}: descriptor says {expected} bytes, received {actual}")]
    SizeMismatch { digest: String, expected: u64, actual: u64 },
    #[error("blob {digest} is missing from the store; pull or import the image again")]
    BlobMissing { digest: String },
    #[error(transparent)]
    MediaType(#[from] MediaTypeError),
    #[error("invalid {what}: {detail}")]
    InvalidManifest { what: String, detail: String },
    #[error("{reference} has no image for platform {platform} (available: {available})")]
    NoMatchingPlatform { reference: String, platform: String, available: String },
    #[error("layer {layer} was rejected: {source}")]
    Unpack { layer: String, source: crate::unpack::UnpackError },
    #[error("cannot import {path}: {why}")]
    Import { path: String, why: String },
    #[error("{what} already exists at {path}; choose another path or remove it first")]
    Exists { what: &'static str, path: String },
    #[error("image {reference} is used by {users}; stop and remove those first, or use -f")]
    InUse { reference: String, users: String },
    #[error(
        "no space left on device while writing {path}; free space under the state root and retry (nothing was stored)"
    )]
    NoSpace { path: String },
    #[error("{0}")]
    Snapshot(String),
    #[error("I/O error at {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(berth_store::StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl From<berth_store::StoreError> for ImageError {
    fn from(e: berth_store::StoreError) -> Self {
        match e {
            berth_store::StoreError::DiskFull { context } => {
                Self::NoSpace { path: format!("the state database ({context})") }
            }
            other => Self::Store(other),
        }
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Wraps an `io::Error` with the path it happened at, turning ENOSPC into a
/// dedicated error so the user sees that the disk is full.
pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| classify_io(path, source)
}

pub fn classify_io(path: &Path, source: std::io::Error) -> ImageError {
    if source.raw_os_error() == Some(libc::ENOSPC) || source.raw_os_error() == Some(libc::EDQUOT) {
        ImageError::NoSpace { path: path.display().to_string() }
    } else {
        ImageError::Io { path: path.display().to_string(), source }
    }
}

impl ImageError {
    /// A stable kind for API clients and exit codes.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Reference(_)
            | Self::Invalid(_)
            | Self::MediaType(_)
            | Self::InvalidManifest { .. }
            | Self::Import { .. }
            | Self::Config(_) => "invalid",
            Self::NotFound { .. }
            | Self::ManifestUnknown { .. }
            | Self::BlobMissing { .. }
            | Self::NoMatchingPlatform { .. } => "not_found",
            Self::Ambiguous { .. } | Self::Exists { .. } | Self::InUse { .. } => "conflict",
            Self::Unreachable { .. } | Self::Registry { .. } => "registry",
            Self::AuthRequired { .. } | Self::Unauthorized { .. } | Self::InsecureNotAllowed { .. } => "unauthorized",
            Self::DigestMismatch { .. } | Self::SizeMismatch { .. } | Self::Unpack { .. } => "integrity",
            Self::NoSpace { .. } => "no_space",
            Self::Io { .. } | Self::Store(_) | Self::Snapshot(_) => "internal",
        }
    }
}

//! OCI image-spec and Docker v2 schema 2 media types, and what berth does
//! with each.

use std::fmt;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The media types berth understands. Anything else is refused by name, so
/// that an unknown artifact never half-imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    OciManifest,
    OciIndex,
    OciConfig,
    OciLayer(Compression),
    DockerManifest,
    DockerManifestList,
    DockerConfig,
    DockerLayer,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaTypeError {
    #[error("unsupported media type {0:?}: berth handles OCI image manifests, indexes and tar/gzip/zstd layers and Docker v2 schema 2 images")]
    Unsupported(String),
    #[error("media type {found:?} cannot be used as {expected}")]
    WrongKind { found: String, expected: &'static str },
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What berth asks a registry for when it pulls a manifest.
pub const MANIFEST_ACCEPT: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

impl MediaType {
    pub fn parse(s: &str) -> Result<Self, MediaTypeError> {
        // Parameters such as `; charset=utf-8` are not part of the type.
        let s = s.split(';').next().unwrap_or("").trim();
        Ok(match s {
            OCI_MANIFEST => Self::OciManifest,
            OCI_INDEX => Self::OciIndex,
            OCI_CONFIG => Self::OciConfig,
            OCI_LAYER => Self::OciLayer(Compression::None),
            OCI_LAYER_GZIP => Self::OciLayer(Compression::Gzip),
            OCI_LAYER_ZSTD => Self::OciLayer(Compression::Zstd),
            DOCKER_MANIFEST => Self::DockerManifest,
            DOCKER_MANIFEST_LIST => Self::DockerManifestList,
            DOCKER_CONFIG => Self::DockerConfig,
            DOCKER_LAYER => Self::DockerLayer,
            other => return Err(MediaTypeError::Unsupported(other.to_string())),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OciManifest => OCI_MANIFEST,
            Self::OciIndex => OCI_INDEX,
            Self::OciConfig => OCI_CONFIG,
            Self::OciLayer(Compression::None) => OCI_LAYER,
            Self::OciLayer(Compression::Gzip) => OCI_LAYER_GZIP,
            Self::OciLayer(Compression::Zstd) => OCI_LAYER_ZSTD,
            Self::DockerManifest => DOCKER_MANIFEST,
            Self::DockerManifestList => DOCKER_MANIFEST_LIST,
            Self::DockerConfig => DOCKER_CONFIG,
            Self::DockerLayer => DOCKER_LAYER,
        }
    }

    pub fn is_index(self) -> bool {
        matches!(self, Self::OciIndex | Self::DockerManifestList)
    }

    pub fn is_manifest(self) -> bool {
        matches!(self, Self::OciManifest | Self::DockerManifest)
    }

    /// The compression of a layer type, or an error for non-layer types.
    pub fn layer_compression(self) -> Result<Compression, MediaTypeError> {
        match self {
            Self::OciLayer(c) => Ok(c),
            Self::DockerLayer => Ok(Compression::Gzip),
            other => Err(MediaTypeError::WrongKind { found: other.as_str().to_string(), expected: "a layer" }),
        }
    }

    /// Checks that a config descriptor names an image config.
    pub fn expect_config(s: &str) -> Result<Self, MediaTypeError> {
        match Self::parse(s)? {
            t @ (Self::OciConfig | Self::DockerConfig) => Ok(t),
            other => Err(MediaTypeError::WrongKind { found: other.as_str().to_string(), expected: "an image config" }),
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Guesses a compression from a blob's first bytes, for formats that do not
/// say (docker-save tars, plain rootfs tars).
pub fn sniff_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_round_trips() {
        for s in [
            OCI_MANIFEST,
            OCI_INDEX,
            OCI_CONFIG,
            OCI_LAYER,
            OCI_LAYER_GZIP,
            OCI_LAYER_ZSTD,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
            DOCKER_CONFIG,
            DOCKER_LAYER,
        ] {
            assert_eq!(MediaType::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn parameters_are_ignored_and_unknown_types_named() {
        assert_eq!(
            MediaType::parse("application/vnd.oci.image.manifest.v1+json; charset=utf-8").unwrap(),
            MediaType::OciManifest
        );
        let err = MediaType::parse("application/vnd.docker.distribution.manifest.v1+prettyjws").unwrap_err();
        assert!(err.to_string().contains("v1+prettyjws"));
        assert!(MediaType::parse("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip").is_err());
    }

    #[test]
    fn layer_compression_and_kinds() {
        assert_eq!(MediaType::DockerLayer.layer_compression().unwrap(), Compression::Gzip);
        assert_eq!(MediaType::parse(OCI_LAYER_ZSTD).unwrap().layer_compression().unwrap(), Compression::Zstd);
        assert!(MediaType::OciConfig.layer_compression().is_err());
        assert!(MediaType::expect_config(OCI_LAYER).is_err());
        assert!(MediaType::OciIndex.is_index() && MediaType::DockerManifestList.is_index());
        assert!(MediaType::DockerManifest.is_manifest());
    }

    #[test]
    fn sniffs_magic_numbers() {
        assert_eq!(sniff_compression(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(sniff_compression(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(sniff_compression(b"etc/\0\0"), Compression::None);
        assert_eq!(sniff_compression(b""), Compression::None);
    }
}

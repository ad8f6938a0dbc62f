//! Reading manifests, indexes and configs (OCI and Docker v2 schema 2)
//! through the `oci-spec` types into the few facts the store needs.

use berth_core::api::ImageRunConfig;
use berth_core::{Digest, MediaType};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::error::{ImageError, Result};

/// A descriptor whose digest and media type have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: MediaType,
    pub config: Desc,
    pub layers: Vec<Desc>,
}

#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub desc: Desc,
    pub media_type: MediaType,
    /// `(os, architecture, variant)` when the entry states its platform.
    pub platform: Option<(String, String, Option<String>)>,
    /// `org.opencontainers.image.ref.name`, in OCI layouts.
    pub ref_name: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Parsed {
    Manifest(Manifest),
    Index { media_type: MediaType, entries: Vec<IndexEntry> },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub created: Option<String>,
    pub diff_ids: Vec<Digest>,
    pub run: ImageRunConfig,
}

fn invalid(what: &str, detail: impl ToString) -> ImageError {
    ImageError::InvalidManifest { what: what.to_string(), detail: detail.to_string() }
}

fn desc(what: &str, d: &Descriptor) -> Result<Desc> {
    let digest = Digest::parse(d.digest().as_ref()).map_err(|e| invalid(what, e))?;
    Ok(Desc { media_type: d.media_type().to_string(), digest, size: d.size() })
}

/// The media type a manifest document declares, falling back to the
/// transport's content type and then to its shape.
fn declared_type(bytes: &[u8], content_type: Option<&str>) -> Result<MediaType> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let p: Probe = serde_json::from_slice(bytes).map_err(|e| invalid("manifest", e))?;
    if p.schema_version == Some(1) {
        return Err(invalid(
            "manifest",
            "Docker schema 1 manifests are deprecated and not supported; rebuild or re-push the image",
        ));
    }
    if let Some(t) = p.media_type.as_deref().or(content_type) {
        return Ok(MediaType::parse(t)?);
    }
    Ok(if p.manifests.is_some() { MediaType::OciIndex } else { MediaType::OciManifest })
}

pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed> {
    let t = declared_type(bytes, content_type)?;
    if t.is_index() {
        let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| invalid("image index", e))?;
        let mut entries = Vec::new();
        for m in index.manifests() {
            let d = desc("index entry", m)?;
            // Attestations and other artifacts sit in indexes too; skip what is not an image.
            let Ok(mt) = MediaType::parse(&d.media_type) else { continue };
            if !mt.is_manifest() && !mt.is_index() {
                continue;
            }
            let platform =
                m.platform().as_ref().map(|p| (p.os().to_string(), p.architecture().to_string(), p.variant().clone()));
            let ref_name = m.annotations().as_ref().and_then(|a| a.get("org.opencontainers.image.ref.name").cloned());
            entries.push(IndexEntry { desc: d, media_type: mt, platform, ref_name });
        }
        return Ok(Parsed::Index { media_type: t, entries });
    }
    if !t.is_manifest() {
        let found = t.as_str().to_string();
        return Err(berth_core::MediaTypeError::WrongKind { found, expected: "a manifest or index" }.into());
    }
    let m: ImageManifest = serde_json::from_slice(bytes).map_err(|e| invalid("image manifest", e))?;
    let config = desc("config descriptor", m.config())?;
    MediaType::expect_config(&config.media_type)?;
    let mut layers = Vec::new();
    for l in m.layers() {
        let d = desc("layer descriptor", l)?;
        MediaType::parse(&d.media_type)?.layer_compression()?;
        layers.push(d);
    }
    Ok(Parsed::Manifest(Manifest { media_type: t, config, layers }))
}

pub fn parse_config(bytes: &[u8]) -> Result<Config> {
    let c: ImageConfiguration = serde_json::from_slice(bytes).map_err(|e| invalid("image config", e))?;
    let diff_ids = c
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| invalid("image config rootfs.diff_ids", e)))
        .collect::<Result<Vec<_>>>()?;
    let mut run = ImageRunConfig::default();
    if let Some(cfg) = c.config() {
        run.entrypoint = cfg.entrypoint().clone().unwrap_or_default();
        run.cmd = cfg.cmd().clone().unwrap_or_default();
        run.env = cfg.env().clone().unwrap_or_default();
        run.working_dir = cfg.working_dir().clone().filter(|w| !w.is_empty());
        run.user = cfg.user().clone().filter(|u| !u.is_empty());
        run.exposed_ports = cfg.exposed_ports().clone().unwrap_or_default();
        run.exposed_ports.sort();
        run.labels = cfg.labels().clone().unwrap_or_default().into_iter().collect();
        run.stop_signal = cfg.stop_signal().clone();
    }
    Ok(Config {
        os: c.os().to_string(),
        architecture: c.architecture().to_string(),
        variant: c.variant().clone(),
        created: c.created().clone(),
        diff_ids,
        run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn parses_docker_and_oci_manifests() {
        for (mt, cfg_t, layer_t) in [
            (berth_core::media::DOCKER_MANIFEST, berth_core::media::DOCKER_CONFIG, berth_core::media::DOCKER_LAYER),
            (berth_core::media::OCI_MANIFEST, berth_core::media::OCI_CONFIG, berth_core::media::OCI_LAYER_ZSTD),
        ] {
            let doc = format!(
                r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"{cfg_t}","digest":"{D1}","size":10}},
                "layers":[{{"mediaType":"{layer_t}","digest":"{D2}","size":20}}]}}"#
            );
            let Parsed::Manifest(m) = parse(doc.as_bytes(), None).unwrap() else { panic!("not a manifest") };
            assert_eq!(m.config.digest.to_string(), D1);
            assert_eq!(m.layers[0].size, 20);
        }
    }

    #[test]
    fn refuses_schema1_foreign_layers_and_bad_digests() {
        assert!(parse(br#"{"schemaVersion":1,"name":"x"}"#, None).unwrap_err().to_string().contains("schema 1"));
        let foreign = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{D1}","size":1}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{D2}","size":1}}]}}"#,
            berth_core::media::DOCKER_MANIFEST,
            berth_core::media::DOCKER_CONFIG
        );
        assert!(parse(foreign.as_bytes(), None).unwrap_err().to_string().contains("foreign"));
        let bad = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:12","size":1},"layers":[]}"#;
        assert!(parse(bad.as_bytes(), None).is_err());
    }

    #[test]
    fn index_entries_keep_platform_and_skip_artifacts() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
              {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D1}","size":5,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"application/vnd.in-toto+json","digest":"{D2}","size":5}}]}}"#
        );
        let Parsed::Index { entries, .. } = parse(doc.as_bytes(), None).unwrap() else { panic!("not an index") };
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].platform, Some(("linux".into(), "arm64".into(), Some("v8".into()))));
    }

    #[test]
    fn config_facts() {
        let doc = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","config":{{"Cmd":["/bin/sh"],"Env":["A=1"],"WorkingDir":"/w","ExposedPorts":{{"80/tcp":{{}}}}}},"rootfs":{{"type":"layers","diff_ids":["{D1}"]}}}}"#
        );
        let c = parse_config(doc.as_bytes()).unwrap();
        assert_eq!(c.diff_ids.len(), 1);
        assert_eq!(c.run.cmd, vec!["/bin/sh"]);
        assert_eq!(c.run.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.run.exposed_ports, vec!["80/tcp"]);
    }
}

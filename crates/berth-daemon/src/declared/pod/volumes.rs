//! A pod's volumes: the ConfigMaps and Secrets they read, the directories
//! and files made for them (on a tmpfs of the pod's own for anything in
//! memory), and the emptyDir size limits.

use super::*;

/// The name a pod's tmpfs mounts carry (in `/proc/self/mountinfo`).
fn tmpfs_source(pod: &str) -> String {
    format!("berth-pod-{}", &pod[..12.min(pod.len())])
}

/// Bytes used below `path` (files only; what an emptyDir's sizeLimit counts).
pub(super) fn disk_usage(path: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

impl Worker {
    pub(super) fn sources(&self, namespace: &str) -> Result<ConfigSources, crate::declared::DeclaredError> {
        let mut s = ConfigSources::default();
        for (_, _, o) in self.d.declared("ConfigMap")? {
            if let berth_manifest::Object::ConfigMap(c) = o {
                if c.meta.namespace == namespace {
                    s.config_maps.insert(c.meta.name.clone(), c);
                }
            }
        }
        for (_, _, o) in self.d.declared("Secret")? {
            if let berth_manifest::Object::Secret(c) = o {
                if c.meta.namespace == namespace {
                    s.secrets.insert(c.meta.name.clone(), c);
                }
            }
        }
        Ok(s)
    }

    /// Makes the pod's volume directories and writes ConfigMap and Secret
    /// files, once (a directory that exists is complete: it is renamed
    /// into place). In a pod with a user namespace (`owner`) the files
    /// belong to its root, as Kubernetes gives them, so a mode such as
    /// 0400 still lets root inside read them.
    pub(super) fn volumes(
        &self,
        pod: &PodRecord,
        sources: &ConfigSources,
        disk: &std::path::Path,
        memory: &std::path::Path,
        owner: Option<berth_core::api::IdMapping>,
    ) -> Result<(), spec::ConfigError> {
        let give = |p: &std::path::Path| match owner {
            Some(m) => std::os::unix::fs::lchown(p, Some(m.host_uid), Some(m.host_gid)),
            None => Ok(()),
        };
        use std::os::unix::fs::PermissionsExt;
        let io = |e: std::io::Error| spec::ConfigError(format!("preparing the pod's volumes: {e}"));
        // Secrets, ConfigMaps and memory emptyDirs live on a tmpfs of the
        // pod's own, so a secret value never reaches a disk, whatever the
        // run root is on.
        let mounts = self.d.mounts.as_ref();
        if !pod.template.volumes.is_empty() && !mounts.mounts_under(memory).iter().any(|m| m == memory) {
            std::fs::create_dir_all(memory).map_err(io)?;
            mounts.mount_tmpfs(memory, &tmpfs_source(&pod.uid), "mode=0700").map_err(io)?;
        }
        for v in &pod.template.volumes {
            let dir = spec::volume_dir(&pod.template, &v.name, disk, memory).expect("declared volume");
            if dir.exists() {
                continue;
            }
            if let VolumeSource::EmptyDir { medium: berth_manifest::model::Medium::Memory, size_limit_bytes } =
                &v.source
            {
                std::fs::create_dir_all(&dir).map_err(io)?;
                let size = size_limit_bytes.map(|b| format!(",size={b}")).unwrap_or_default();
                if let Err(e) = mounts.mount_tmpfs(&dir, &tmpfs_source(&pod.uid), &format!("mode=0777{size}")) {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(io(e));
                }
                continue;
            }
            let parent = dir.parent().expect("volume dirs have a parent");
            std::fs::create_dir_all(parent).map_err(io)?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
            let files = spec::projected_files(&v.source, sources)?;
            let tmp = parent.join(format!(".{}.tmp", v.name));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(io)?;
            let mode = if matches!(v.source, VolumeSource::EmptyDir { .. }) { 0o777 } else { 0o755 };
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io)?;
            give(&tmp).map_err(io)?;
            for (path, bytes, mode) in files {
                let target = tmp.join(&path);
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p).map_err(io)?;
                    // Directories an item path made (`a/b/key`) too.
                    for d in p.ancestors().take_while(|d| d.starts_with(&tmp) && *d != tmp) {
                        give(d).map_err(io)?;
                    }
                }
                std::fs::write(&target, bytes).map_err(io)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o777)).map_err(io)?;
                give(&target).map_err(io)?;
            }
            std::fs::rename(&tmp, &dir).map_err(io)?;
        }
        Ok(())
    }

    /// Why the pod must be evicted: a disk emptyDir past its sizeLimit.
    pub(super) fn over_size_limit(&self, pod: &PodRecord, disk: &std::path::Path) -> Option<String> {
        pod.template.volumes.iter().find_map(|v| match &v.source {
            VolumeSource::EmptyDir { medium: berth_manifest::model::Medium::Disk, size_limit_bytes: Some(limit) } => {
                let used = disk_usage(&disk.join(&v.name));
                (used > *limit).then(|| {
                    format!("Usage of EmptyDir volume {:?} exceeds the limit {limit} bytes ({used} bytes used)", v.name)
                })
            }
            _ => None,
        })
    }
}

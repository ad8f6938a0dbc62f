//! Creating a container: the request checked and completed (pids limit,
//! user namespace range), the bundle written, the record stored.

use super::*;

impl Containers {
    /// Creates a container: checks the request, mounts its root filesystem,
    /// writes its bundle, and records it. Nothing is left if it fails.
    pub async fn create(self: &Arc<Self>, mut req: ContainerCreateRequest) -> Result<ContainerRecord> {
        // The default is written into the request: the spec and `inspect`
        // both read it from there.
        if req.limits.pids_limit.is_none() {
            req.limits.pids_limit = self.settings.default_pids_limit;
        }
        let _userns_guard = match req.userns.as_deref() {
            _ if req.userns_mapping.is_some() => {
                return Err(ContainerError::Invalid(
                    "userns_mapping is chosen by the daemon; give userns \"auto\" and leave it out".into(),
                ))
            }
            None | Some("host") => None,
            Some("auto") => {
                let guard = self.userns_alloc.lock().await;
                // A container joining another's network namespace joins the
                // user namespace that owns it, so takes its range.
                let joined = req.networks.iter().find_map(|n| n.strip_prefix("container:"));
                let theirs = joined.and_then(|name| self.resolve(name).ok()).and_then(|o| userns::mapping_of(&o));
                req.userns_mapping = Some(match theirs {
                    Some(m) => m,
                    None => self.choose_userns(&req.networks)?,
                });
                Some(guard)
            }
            Some(other) => {
                return Err(ContainerError::Invalid(format!("userns {other:?} is not known; give auto or host")))
            }
        };
        let restart = req.restart.unwrap_or_default();
        if req.auto_remove && restart != RestartPolicy::No {
            return Err(ContainerError::Invalid(
                "--rm and --restart cannot be combined: a removed container cannot restart".into(),
            ));
        }
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let id = ContainerId::from_bytes(bytes).to_string();
        let name = match &req.name {
            Some(n) => {
                validate_name(n).map_err(|e| ContainerError::Invalid(e.to_string()))?;
                n.clone()
            }
            None => view::generated_name(&bytes),
        };
        if self.store.list_containers()?.iter().any(|c| c.name == name) {
            return Err(ContainerError::Conflict(format!(
                "the name {name:?} is already in use by another container; choose another or remove that one"
            )));
        }
        let image = self.images.resolve(&req.image)?;
        let image_config = self.images.inspect(&image.digest.to_string())?.config;

        let attached = self.networks.plan(&req, &self.bundle(&id), &id, |name| {
            let other = self.resolve(name).ok()?;
            Some((other.id.clone(), self.bundle(&other.id), userns::mapping_of(&other)))
        })?;
        let this = Arc::clone(self);
        let (id2, req2) = (id.clone(), req.clone());
        let built = tokio::task::spawn_blocking(move || this.prepare_bundle(&id2, &req2, &image_config, &attached))
            .await
            .map_err(ContainerError::io("preparing the bundle"))?;
        let secured = built.and_then(|()| {
            crate::state_dirs::secure_bundle(&self.bundle(&id)).map_err(ContainerError::io("securing the bundle"))
        });
        if let Err(e) = secured {
            self.cleanup_files(&id);
            return Err(e);
        }
        let record = ContainerRecord {
            id: id.clone(),
            name,
            image: req.image.clone(),
            image_digest: image.digest.clone(),
            request: req.clone(),
            state: ContainerState::Created,
            created_at: self.now(),
            started_at: None,
            finished_at: None,
            pid: None,
            shim_pid: None,
            shim_start_time: None,
            shim_boot_id: None,
            exit_code: None,
            exit_signal: None,
            oom_killed: false,
            error: None,
            restart_count: 0,
            stopped_by_user: false,
            backoff_ms: None,
            network: Default::default(),
        };
        if let Err(e) = self.store.put_container(&record) {
            self.cleanup_files(&id);
            return Err(e.into());
        }
        self.event(&record, "create", &[]);
        Ok(record)
    }

    /// A range for a new user-namespaced container on `networks`: its
    /// pod's (held by the pod's sandbox or other containers), else the
    /// lowest free block. The caller holds `userns_alloc` until the choice
    /// is recorded.
    pub(super) fn choose_userns(&self, networks: &[String]) -> Result<IdMapping> {
        let pods = self.networks.sandbox_mappings()?.into_iter();
        let held: Vec<userns::Held> = pods
            .map(|(uid, mapping)| userns::Held { networks: vec![format!("pod:{uid}")], mapping })
            .chain(self.store.list_containers()?.iter().filter_map(userns::held))
            .collect();
        userns::choose(&self.settings.userns_pool, &held, networks).ok_or_else(|| {
            ContainerError::Conflict(format!(
                "all {} user namespace ranges of containers.userns_range are in use; remove containers or configure a larger range",
                self.settings.userns_pool.blocks
            ))
        })
    }

    /// The user namespace range of pod `uid` (`hostUsers: false`): the one
    /// its sandbox or containers already hold, else a free one. The range
    /// is reserved only once the sandbox records it, so the caller keeps
    /// the returned guard until then.
    pub async fn pod_userns(&self, uid: &str) -> Result<(IdMapping, tokio::sync::MutexGuard<'_, ()>)> {
        let guard = self.userns_alloc.lock().await;
        Ok((self.choose_userns(&[format!("pod:{uid}")])?, guard))
    }

    pub(super) fn prepare_bundle(
        &self,
        id: &str,
        req: &ContainerCreateRequest,
        image: &berth_core::api::ImageRunConfig,
        net: &crate::networks::Attached,
    ) -> Result<()> {
        let rootfs = self.images.mount_rootfs_shifted(&req.image, id, userns::shift(req.userns_mapping))?;
        if let Some(m) = req.userns_mapping {
            let roots = [self.root.parent(), self.run_root.parent()].into_iter().flatten().collect::<Vec<_>>();
            userns::own_volumes(&req.volumes, m, &roots)
                .map_err(ContainerError::io("giving the volumes to the user namespace"))?;
        }
        let (passwd, group) = user_files(&rootfs, req.user.as_deref())?;
        let seccomp = berth_runtime::seccomp_choice(&req.security.security_opt, |p| std::fs::read_to_string(p))
            .map_err(|e| ContainerError::Invalid(e.to_string()))?;
        let input = berth_runtime::SpecInput {
            id,
            rootfs: &rootfs,
            image,
            request: req,
            cgroups_path: self.cgroups_path(id),
            passwd: passwd.as_deref(),
            group: group.as_deref(),
            seccomp,
            resolv_conf: net.resolv_conf.as_deref(),
            hosts: net.hosts.as_deref(),
            network: match (&net.plan, &net.netns, &net.userns) {
                (crate::networks::NetworkPlan::Host, _, _) => berth_runtime::NetworkMode::Host,
                (_, Some(net), Some(user)) => berth_runtime::NetworkMode::JoinOwned { net, user },
                (_, Some(path), None) => berth_runtime::NetworkMode::Join(path),
                (_, None, _) => berth_runtime::NetworkMode::Isolated,
            },
            host: self.host.clone(),
        };
        let mut spec = berth_runtime::build_spec(&input).map_err(|e| ContainerError::Invalid(e.to_string()))?;
        if req.userns_mapping.is_some() {
            if let Some(mounts) = spec.mounts_mut() {
                berth_runtime::keep_locked_flags(mounts, locked_flags);
            }
        }
        let bundle = self.bundle(id);
        std::fs::create_dir_all(&bundle).map_err(ContainerError::io(format!("creating {}", bundle.display())))?;
        let json = serde_json::to_vec_pretty(&spec).map_err(ContainerError::io("encoding the runtime spec"))?;
        berth_shim::protocol::write_atomic(&bundle.join("config.json"), &json)
            .map_err(ContainerError::io(format!("writing {}", bundle.join("config.json").display())))?;
        Ok(())
    }

    pub(super) fn cleanup_files(&self, id: &str) {
        let _ = self.images.remove_rootfs(id);
        let _ = std::fs::remove_dir_all(self.bundle(id));
        let _ = std::fs::remove_dir_all(self.state_dir(id).0);
    }
}

/// The image's `/etc/passwd` and `/etc/group` as the container sees them:
/// resolved inside its root filesystem (a symlink to a host path names
/// the image's own file), regular files only, at most [`MAX_USER_FILE`]
/// bytes each. A user given by name needs them readable; a numeric user
/// (or none, root) runs without them (no HOME or extra groups from them)
/// when the container has broken them. Blocks: call it off the async
/// workers.
pub(crate) fn user_files(rootfs: &std::path::Path, user: Option<&str>) -> Result<(Option<String>, Option<String>)> {
    let root =
        berth_saferoot::Root::open(rootfs).map_err(ContainerError::io("opening the container's root filesystem"))?;
    let numeric = user.is_none_or(|u| u.split(':').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())));
    let read = |name: &str| match root.read_text(name, MAX_USER_FILE) {
        Ok(text) => Ok(text),
        Err(e) if numeric => {
            tracing::warn!(file = name, error = %e, "ignoring the container's unreadable user file");
            Ok(None)
        }
        Err(e) => Err(ContainerError::Invalid(format!(
            "cannot read the image's /{name}: {e}; give a numeric user or fix /{name} in the image"
        ))),
    };
    Ok((read("etc/passwd")?, read("etc/group")?))
}

/// The flags of the mount `path` is on that a user namespace cannot clear.
fn locked_flags(path: &Path) -> Option<berth_runtime::LockedFlags> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let f = statvfs(path).ok()?.flags();
    Some(berth_runtime::LockedFlags {
        nosuid: f.contains(FsFlags::ST_NOSUID),
        nodev: f.contains(FsFlags::ST_NODEV),
        noexec: f.contains(FsFlags::ST_NOEXEC),
    })
}

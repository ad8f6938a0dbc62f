//! Containers: create, start, stop, kill, remove, wait, logs, and the
//! monitor that notices exits and applies restart policies.
//!
//! Each container has a bundle (`config.json`) and log under the state
//! root, a shim state directory under the run root, and an overlay root
//! filesystem from the image store. The record in the store is the truth
//! about what the user asked for and what last happened; the shim's state
//! directory is the truth about the process, which is why a daemon restart
//! re-reads it and carries on.

mod exec;
pub mod logs;
mod secret_env;
pub mod stats;
pub mod userns;
mod view;

pub use exec::{resize, TtySession};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::api::{ContainerCreateRequest, ContainerInspect, ContainerSummary, IdMapping, WaitResponse};
use berth_core::container::{validate_name, Backoff, ContainerId, ContainerState, RestartPolicy, Transition};
use berth_image::ImageStore;
use berth_shim::identity::{Known, Liveness, Lost, Processes, ShimIdentity};
use berth_shim::protocol::{ExitRecord, StateDir};
use berth_shim::runtime::{OciRuntime, Runc};
use berth_store::{ContainerRecord, Store, StoreError};

pub use logs::LogQuery;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no such container: {0}; see 'berth ps -a'")]
    NotFound(String),
    #[error("container name or ID prefix {0:?} is ambiguous; give more of the ID")]
    Ambiguous(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("container {name} failed to start: {why}")]
    StartFailed { name: String, why: String },
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error(transparent)]
    Network(#[from] crate::networks::NetworkError),
    #[error(transparent)]
    Store(StoreError),
    #[error("OCI runtime error: {0}")]
    Runtime(#[from] berth_shim::runtime::RuntimeError),
    #[error("cannot prepare the container: {0}")]
    Io(String),
}

impl From<StoreError> for ContainerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Self::Conflict(e.to_string()),
            other => Self::Store(other),
        }
    }
}

type Result<T, E = ContainerError> = std::result::Result<T, E>;

/// `[containers]` settings.
#[derive(Debug, Clone)]
pub struct ContainerSettings {
    pub runtime: PathBuf,
    pub cgroup_parent: String,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub backoff_max: Duration,
    /// The pids limit of a container whose request sets none (`None`: no
    /// limit); written into its request, so `inspect` shows it.
    pub default_pids_limit: Option<i64>,
    /// Where `--userns=auto` containers' host ids come from.
    pub userns_pool: userns::UsernsPool,
}

pub struct Containers {
    store: Arc<dyn Store>,
    events: Arc<crate::events::Events>,
    images: Arc<ImageStore>,
    networks: Arc<crate::networks::Networks>,
    runtime: Arc<dyn OciRuntime>,
    runc: Runc,
    clock: Arc<dyn berth_core::clock::Clock>,
    /// The host's cgroup filesystem and facts the spec needs, read once.
    cgroups: stats::Cgroups,
    host: berth_runtime::HostInfo,
    root: PathBuf,
    run_root: PathBuf,
    exe: PathBuf,
    settings: ContainerSettings,
    /// `/proc`: whether a recorded shim is still the same process.
    procs: Arc<dyn Processes>,
    /// One lock per container serialises changes to its record (start,
    /// stop, kill, exit, restart, remove); different containers proceed in
    /// parallel.
    locks: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Wakes the monitor when a shim it started ends.
    exited: tokio::sync::Notify,
    /// Wakes `wait` and log followers when a container's state changed.
    changed: tokio::sync::Notify,
    /// Exits of containers removed right after (for `wait` on `--rm`).
    recent_exits: Mutex<std::collections::HashMap<String, WaitResponse>>,
    /// Held from choosing a user namespace's host range until the record
    /// holding it is stored, so no range is handed out twice.
    userns_alloc: tokio::sync::Mutex<()>,
}

impl Containers {
    /// The shim program: the small `berth-shim` next to this binary when it
    /// is installed, else this binary's own `shim` subcommand.
    fn shim_command(&self) -> tokio::process::Command {
        let small = self.exe.with_file_name("berth-shim");
        if small.is_file() {
            tokio::process::Command::new(small)
        } else {
            let mut c = tokio::process::Command::new(&self.exe);
            c.arg("shim");
            c
        }
    }

    /// The runtime's state lives under `run_root/runtime` (what
    /// [`Host::real`](crate::host::Host::real) is given).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        networks: Arc<crate::networks::Networks>,
        images: Arc<ImageStore>,
        events: Arc<crate::events::Events>,
        host: &crate::host::Host,
        root: &Path,
        run_root: &Path,
        settings: ContainerSettings,
    ) -> Result<Arc<Self>> {
        let runc = Runc::new(&settings.runtime, &Self::runtime_root(run_root));
        let exe =
            std::env::current_exe().map_err(|e| ContainerError::Io(format!("cannot find the berth binary: {e}")))?;
        Ok(Arc::new(Self {
            store,
            events,
            images,
            networks,
            runtime: Arc::clone(&host.runtime),
            runc,
            clock: Arc::clone(&host.clock),
            cgroups: host.cgroups.clone(),
            host: host.info.clone(),
            root: root.join("containers"),
            run_root: run_root.join("containers"),
            exe,
            settings,
            procs: Arc::clone(&host.procs),
            locks: Mutex::new(Default::default()),
            recent_exits: Mutex::new(Default::default()),
            userns_alloc: tokio::sync::Mutex::new(()),
            exited: tokio::sync::Notify::new(),
            changed: tokio::sync::Notify::new(),
        }))
    }

    /// Where the OCI runtime keeps its state, given the daemon's run root.
    pub fn runtime_root(run_root: &Path) -> PathBuf {
        run_root.join("runtime")
    }

    fn now(&self) -> String {
        self.clock.stamp()
    }

    /// Holds the container's lock until the guard drops.
    async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(self.locks.lock().unwrap_or_else(|p| p.into_inner()).entry(id.to_string()).or_default());
        lock.lock_owned().await
    }

    /// Resolves `key` and locks the container; the record is read again
    /// under the lock, so it is current.
    async fn resolve_locked(&self, key: &str) -> Result<(ContainerRecord, tokio::sync::OwnedMutexGuard<()>)> {
        let id = self.resolve(key)?.id;
        let guard = self.lock(&id).await;
        let c = self.store.get_container(&id)?.ok_or_else(|| ContainerError::NotFound(key.to_string()))?;
        Ok((c, guard))
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn state_dir(&self, id: &str) -> StateDir {
        StateDir(self.run_root.join(id))
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.bundle(id).join("ctr.log")
    }

    fn cgroups_path(&self, id: &str) -> String {
        format!("/{}/{id}", self.settings.cgroup_parent)
    }

    fn oom_files(&self, id: &str) -> Vec<PathBuf> {
        vec![self.cgroups.oom_file(&self.cgroups_path(id))]
    }

    /// The cgroup shims live in, beside the containers': out of the
    /// daemon's, so stopping the daemon's service leaves them be.
    fn shim_cgroup(&self) -> String {
        let parent = self.settings.cgroup_parent.trim_matches('/');
        if parent.is_empty() {
            "shims".into()
        } else {
            format!("{parent}/shims")
        }
    }

    /// What is known of the shim of `c`: the identity in its record, else
    /// the one the shim wrote (the daemon died before recording it), else a
    /// bare PID (records of older berths).
    fn known_shim(&self, c: &ContainerRecord) -> Option<Known> {
        if let (Some(pid), Some(start_time), Some(boot_id)) = (c.shim_pid, c.shim_start_time, c.shim_boot_id.clone()) {
            return Some(Known::Identity(ShimIdentity { pid, start_time, boot_id }));
        }
        let sd = self.state_dir(&c.id);
        if let Some(id) = sd.read_identity().filter(|i| c.shim_pid.is_none_or(|p| p == i.pid)) {
            return Some(Known::Identity(id));
        }
        c.shim_pid.or_else(|| StateDir::read_pid(&sd.shim_pid())).map(Known::Pid)
    }

    /// Whether the shim of `c` still runs: the same PID, start time and
    /// boot (see [`berth_shim::identity`]).
    fn shim_liveness(&self, c: &ContainerRecord) -> Liveness {
        match self.known_shim(c) {
            Some(k) => berth_shim::identity::check(&k, &c.id, &*self.procs),
            None => Liveness::Lost(Lost::Ended),
        }
    }

    /// Waits up to `within` for the shim of `c` to end (it deletes the
    /// runtime's record after reporting the exit: let it finish rather
    /// than race it).
    async fn wait_shim_gone(&self, c: &ContainerRecord, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.shim_liveness(c) == Liveness::Alive && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Finds a container by full ID, name, or unique ID prefix.
    pub fn resolve(&self, key: &str) -> Result<ContainerRecord> {
        if key.is_empty() {
            return Err(ContainerError::NotFound(key.into()));
        }
        let all = self.store.list_containers()?;
        if let Some(c) = all.iter().find(|c| c.id == key || c.name == key) {
            return Ok(c.clone());
        }
        let matches: Vec<_> = all.iter().filter(|c| c.id.starts_with(key)).collect();
        match matches.len() {
            0 => Err(ContainerError::NotFound(key.into())),
            1 => Ok(matches[0].clone()),
            _ => Err(ContainerError::Ambiguous(key.into())),
        }
    }

    pub fn list(&self, all: bool) -> Result<Vec<ContainerSummary>> {
        Ok(self
            .store
            .list_containers()?
            .iter()
            .filter(|c| all || c.state == ContainerState::Running || c.state == ContainerState::Restarting)
            .map(|c| view::summary(c, self.clock.now()))
            .collect())
    }

    pub fn inspect(&self, key: &str) -> Result<ContainerInspect> {
        let c = self.resolve(key)?;
        let spec = std::fs::read(self.bundle(&c.id).join("config.json")).ok();
        Ok(view::inspect(&c, spec.as_deref(), &self.images.rootfs_path(&c.id), &self.log_path(&c.id), self.clock.now()))
    }

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
        let restart: RestartPolicy = req
            .restart
            .as_deref()
            .unwrap_or("no")
            .parse()
            .map_err(|e: berth_core::container::ContainerError| ContainerError::Invalid(e.to_string()))?;
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
            .map_err(|e| ContainerError::Io(e.to_string()))?;
        let secured = built.and_then(|()| {
            crate::state_dirs::secure_bundle(&self.bundle(&id)).map_err(|e| ContainerError::Io(e.to_string()))
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
    fn choose_userns(&self, networks: &[String]) -> Result<IdMapping> {
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

    fn prepare_bundle(
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
                .map_err(|e| ContainerError::Io(format!("giving the volumes to the user namespace: {e}")))?;
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
        std::fs::create_dir_all(&bundle).map_err(|e| ContainerError::Io(format!("{}: {e}", bundle.display())))?;
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| ContainerError::Io(e.to_string()))?;
        berth_shim::protocol::write_atomic(&bundle.join("config.json"), &json)
            .map_err(|e| ContainerError::Io(format!("{}: {e}", bundle.display())))?;
        Ok(())
    }

    fn cleanup_files(&self, id: &str) {
        let _ = self.images.remove_rootfs(id);
        let _ = std::fs::remove_dir_all(self.bundle(id));
        let _ = std::fs::remove_dir_all(self.state_dir(id).0);
    }

    /// Starts a created or exited container and waits until its process
    /// runs (or failed to).
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<ContainerRecord> {
        let (c, _guard) = self.resolve_locked(key).await?;
        self.start_locked(c).await
    }

    async fn start_locked(self: &Arc<Self>, mut c: ContainerRecord) -> Result<ContainerRecord> {
        let state: ContainerState = c.state;
        state.next(Transition::Start, &c.name).map_err(|e| ContainerError::Conflict(e.to_string()))?;
        // A shim of an earlier start may still be at work: one a daemon
        // killed mid-start left running (adopt it rather than kill it), or
        // one still cleaning up after its exit (wait, or its `runc delete`
        // would remove the next start's container of the same id).
        let sd = self.state_dir(&c.id);
        let earlier =
            sd.read_identity().map(Known::Identity).or_else(|| StateDir::read_pid(&sd.shim_pid()).map(Known::Pid));
        let lives = |k: &Known| berth_shim::identity::check(k, &c.id, &*self.procs) == Liveness::Alive;
        if let Some(shim) = earlier.filter(lives) {
            if sd.started().exists() && !sd.exit().exists() {
                c.state = ContainerState::Running;
                c.pid = StateDir::read_pid(&sd.init_pid());
                set_shim(&mut c, &shim);
                c.started_at.get_or_insert_with(|| self.now());
                c.finished_at = None;
                c.exit_code = None;
                self.store.put_container(&c)?;
                tracing::info!(container = %c.name, "adopted a container started before the daemon restarted");
                return Ok(c);
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while lives(&shim) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // The root filesystem survives a daemon restart but not a reboot.
        let image_ref = c.image_digest.to_string();
        let images = Arc::clone(&self.images);
        let (id, shift) = (c.id.clone(), userns::shift(userns::mapping_of(&c)));
        tokio::task::spawn_blocking(move || images.mount_rootfs_shifted(&image_ref, &id, shift))
            .await
            .map_err(|e| ContainerError::Io(e.to_string()))??;
        let _ = std::fs::remove_dir_all(&sd.0);
        std::fs::create_dir_all(&sd.0).map_err(|e| ContainerError::Io(format!("{}: {e}", sd.0.display())))?;
        std::fs::create_dir_all(&self.runc.root).map_err(|e| ContainerError::Io(e.to_string()))?;
        // A leftover runtime record (after a crash) would block create.
        let _ = self.runtime.delete(&c.id, true);
        self.reveal_secret_env(&c)?;
        self.attach_network(&mut c).await?;

        let mut cmd = self.shim_command();
        cmd.arg("--id")
            .arg(&c.id)
            .arg("--bundle")
            .arg(self.bundle(&c.id))
            .arg("--state-dir")
            .arg(&sd.0)
            .arg("--runtime")
            .arg(&self.runc.binary)
            .arg("--runtime-root")
            .arg(&self.runc.root)
            .arg("--log")
            .arg(self.log_path(&c.id))
            .arg("--log-max-size")
            .arg(self.settings.log_max_size.to_string())
            .arg("--log-max-files")
            .arg(self.settings.log_max_files.to_string());
        for f in self.oom_files(&c.id) {
            cmd.arg("--oom-file").arg(f);
        }
        for dir in self.cgroups.joinable(&self.shim_cgroup()) {
            cmd.arg("--cgroup").arg(dir);
        }
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                self.detach_network(&mut c).await;
                return Err(ContainerError::Io(format!("cannot start the shim: {e}")));
            }
        };
        // Who the shim is, read before anything can reap it (its PID
        // cannot be reused while this handle is unwaited).
        let shim = child.id().map(|p| p as i32).map(|pid| match self.procs.identity(pid) {
            Some(id) => Known::Identity(id),
            None => Known::Pid(pid),
        });
        // The shim says `started`, then `exited` once the exit record is on
        // disk (see berth_shim::run); its stdout closing means the same.
        use tokio::io::AsyncBufReadExt;
        let mut notices = tokio::io::BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), notices.next_line()).await;
        // Reap the shim when it ends (so it never lingers as a zombie) and
        // record the exit at once rather than at the monitor's next look.
        let this = Arc::clone(self);
        tokio::spawn(async move {
            while let Ok(Some(line)) = notices.next_line().await {
                if line == "exited" {
                    break;
                }
            }
            this.exited.notify_one();
            let _ = child.wait().await;
            this.exited.notify_one();
        });
        match first {
            Ok(Ok(Some(line))) if line == "started" => {}
            // It started and ended before we read the notice.
            Ok(_) if sd.started().exists() => {}
            Err(_) => {
                return Err(ContainerError::StartFailed {
                    name: c.name.clone(),
                    why: "the shim did not report within 30 s".into(),
                });
            }
            Ok(_) => {
                let exit = sd.read_exit().unwrap_or_else(|| ExitRecord {
                    code: 127,
                    signal: None,
                    finished_at: self.now(),
                    oom_killed: false,
                    error: Some("the shim ended without a word".into()),
                });
                c.state = ContainerState::Exited;
                c.error = exit.error.clone();
                c.exit_code = Some(exit.code);
                c.finished_at = Some(exit.finished_at.clone());
                self.detach_network(&mut c).await;
                self.store.put_container(&c)?;
                self.changed.notify_waiters();
                return Err(ContainerError::StartFailed {
                    name: c.name.clone(),
                    why: exit.error.unwrap_or_else(|| format!("it exited at once with code {}", exit.code)),
                });
            }
        }
        if let Ok(why) = std::fs::read_to_string(sd.cgroup_error()) {
            tracing::warn!(container = %c.name, error = %why.trim(), "the shim stays in the daemon's cgroup: stopping the daemon's service may stop this container");
        }
        c.state = ContainerState::Running;
        c.pid = StateDir::read_pid(&sd.init_pid());
        match &shim {
            Some(k) => set_shim(&mut c, k),
            None => (c.shim_pid, c.shim_start_time, c.shim_boot_id) = (None, None, None),
        }
        c.started_at = Some(self.now());
        c.finished_at = None;
        c.exit_code = None;
        c.exit_signal = None;
        c.oom_killed = false;
        c.error = None;
        c.stopped_by_user = false;
        c.backoff_ms = None;
        self.store.put_container(&c)?;
        self.event(&c, "start", &[]);
        Ok(c)
    }

    fn event(&self, c: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attrs = vec![("image", c.image.clone())];
        attrs.extend(extra.iter().cloned());
        self.events.emit("container", action, &c.id, &c.name, &attrs);
    }

    /// Sends the stop signal, waits `timeout`, then SIGKILL. Idempotent.
    ///
    /// The record changes under the container's lock, so a restart by
    /// policy either happened before (and its process is the one stopped)
    /// or comes after and sees `stopped_by_user`: a stopped container never
    /// comes back by itself.
    pub async fn stop(self: &Arc<Self>, key: &str, timeout: Option<u32>) -> Result<ContainerRecord> {
        let (current, guard) = self.resolve_locked(key).await?;
        if current.state != ContainerState::Running && current.state != ContainerState::Restarting {
            return Err(ContainerError::Conflict(format!(
                "container {} is not running (it is {}); nothing to stop",
                current.name, current.state
            )));
        }
        // A container waiting out a restart backoff just stays stopped.
        let c = self.mark_stopped(current)?;
        if c.state != ContainerState::Running {
            return Ok(c);
        }
        let req = c.request.clone();
        let image_signal = self.images.inspect(&c.image_digest.to_string()).ok().and_then(|i| i.config.stop_signal);
        let signal = view::signal_number(req.stop_signal.as_deref().or(image_signal.as_deref()).unwrap_or("SIGTERM"))
            .map_err(ContainerError::Invalid)?;
        let grace = Duration::from_secs(timeout.or(req.stop_timeout).unwrap_or(10) as u64);
        let _ = self.runtime.kill(&c.id, signal, false);
        self.event(&c, "kill", &[("signal", signal.to_string())]);
        // The exit is recorded under the lock: let go of it to wait.
        drop(guard);
        if !self.wait_exit(&c, grace).await {
            let _ = self.runtime.kill(&c.id, 9, true);
            self.wait_exit(&c, Duration::from_secs(10)).await;
        }
        self.reap_exits().await;
        self.resolve(&c.id).or_else(|_| Ok(c))
    }

    /// Sends a signal; the container's policy will not restart it.
    pub async fn kill(self: &Arc<Self>, key: &str, signal: &str) -> Result<ContainerRecord> {
        let signal = view::signal_number(signal).map_err(ContainerError::Invalid)?;
        let (c, _guard) = self.resolve_locked(key).await?;
        if c.state != ContainerState::Running {
            return Err(ContainerError::Conflict(format!("container {} is not running", c.name)));
        }
        let c = self.mark_stopped(c)?;
        self.runtime.kill(&c.id, signal, false)?;
        self.event(&c, "kill", &[("signal", signal.to_string())]);
        Ok(c)
    }

    /// Records that the user stopped `c` (read under its lock, which the
    /// caller holds), so no restart policy brings it back; one waiting out
    /// a restart backoff is exited at once.
    fn mark_stopped(&self, mut c: ContainerRecord) -> Result<ContainerRecord> {
        c.stopped_by_user = true;
        let was_restarting = c.state == ContainerState::Restarting;
        if was_restarting {
            c.state = ContainerState::Exited;
            c.backoff_ms = None;
        }
        self.store.put_container(&c)?;
        if was_restarting {
            self.changed.notify_waiters();
        }
        Ok(c)
    }

    /// Waits until the shim recorded the exit of `c`, or is gone without
    /// one (the monitor then records it as lost); whether either happened.
    async fn wait_exit(&self, c: &ContainerRecord, within: Duration) -> bool {
        let sd = self.state_dir(&c.id);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if sd.exit().exists() || self.shim_liveness(c) != Liveness::Alive {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Removes a container and everything it had. A running one needs
    /// `force`: it is marked stopped and killed under its lock, so a
    /// restart by policy cannot bring it back in between.
    pub async fn remove(self: &Arc<Self>, key: &str, force: bool) -> Result<String> {
        let (c, guard) = self.resolve_locked(key).await?;
        if c.state != ContainerState::Running {
            return self.remove_locked(&c).await;
        }
        if !force {
            return Err(ContainerError::Conflict(format!(
                "container {} is running; stop it first or use rm -f",
                c.name
            )));
        }
        let c = self.mark_stopped(c)?;
        let _ = self.runtime.kill(&c.id, 9, true);
        drop(guard);
        self.wait_exit(&c, Duration::from_secs(10)).await;
        self.reap_exits().await;
        let (c, _guard) = self.resolve_locked(&c.id).await?;
        if c.state == ContainerState::Running {
            return Err(ContainerError::Conflict(format!(
                "container {} did not exit within 10 s of SIGKILL; try rm -f again",
                c.name
            )));
        }
        self.remove_locked(&c).await
    }

    async fn remove_locked(&self, c: &ContainerRecord) -> Result<String> {
        // The shim deletes the runtime's record after it reported the exit;
        // let it finish rather than race it.
        self.wait_shim_gone(c, Duration::from_secs(10)).await;
        self.remove_empty_shim_cgroup();
        let _ = self.runtime.delete(&c.id, true);
        let mut c = c.clone();
        self.detach_network(&mut c).await;
        let c = &c;
        let images = Arc::clone(&self.images);
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || images.remove_rootfs(&id))
            .await
            .map_err(|e| ContainerError::Io(e.to_string()))??;
        let _ = std::fs::remove_dir_all(self.bundle(&c.id));
        let _ = std::fs::remove_dir_all(self.state_dir(&c.id).0);
        self.store.delete_container(&c.id)?;
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).remove(&c.id);
        self.changed.notify_waiters();
        self.event(c, "destroy", &[]);
        Ok(c.id.clone())
    }

    /// Waits until the container is not running; returns its exit.
    pub async fn wait(self: &Arc<Self>, key: &str) -> Result<WaitResponse> {
        let c = self.resolve(key)?;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.store.get_container(&c.id)? {
                Some(now) if now.state == ContainerState::Exited || now.state == ContainerState::Created => {
                    return Ok(WaitResponse { exit_code: now.exit_code.unwrap_or(0), error: now.error });
                }
                Some(_) => {}
                None => {
                    let recent = self.recent_exits.lock().unwrap_or_else(|p| p.into_inner()).get(&c.id).cloned();
                    return recent.ok_or_else(|| ContainerError::NotFound(key.to_string()));
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
        }
    }

    /// Runs forever: records exits, restarts by policy, removes `--rm`
    /// containers. Also called once at daemon start to adopt what happened
    /// while it was away.
    pub async fn monitor(self: Arc<Self>) {
        loop {
            self.reap_exits().await;
            // Shims the daemon started wake it at once; adopted ones (after a
            // restart) are noticed by the periodic look.
            tokio::select! {
                _ = self.exited.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Upgrades records of running containers written by an older berth,
    /// which knew their shims by PID alone: a shim that is still this
    /// container's (by its command line) gets its start time and boot
    /// recorded, and leaves the daemon's cgroup for the shims' one. Run at
    /// start, before the monitor; idempotent.
    pub async fn adopt_legacy_shims(&self) {
        let Ok(all) = self.store.list_containers() else { return };
        for c in all.into_iter().filter(|c| c.state == ContainerState::Running && c.shim_start_time.is_none()) {
            let _guard = self.lock(&c.id).await;
            let Ok(Some(mut c)) = self.store.get_container(&c.id) else { continue };
            let Some(known @ Known::Pid(pid)) = self.known_shim(&c) else { continue };
            if c.state != ContainerState::Running
                || berth_shim::identity::check(&known, &c.id, &*self.procs) != Liveness::Alive
            {
                continue;
            }
            let Some(identity) = self.procs.identity(pid) else { continue };
            set_shim(&mut c, &Known::Identity(identity));
            if let Err(e) = self.store.put_container(&c) {
                tracing::warn!(container = %c.name, error = %e, "cannot record the shim's identity");
                continue;
            }
            for dir in self.cgroups.joinable(&self.shim_cgroup()) {
                let moved = std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::write(dir.join("cgroup.procs"), pid.to_string()));
                if let Err(e) = moved {
                    tracing::warn!(container = %c.name, cgroup = %dir.display(), error = %e, "cannot move an adopted shim out of the daemon's cgroup");
                }
            }
            tracing::info!(container = %c.name, shim_pid = pid, "adopted the shim of an older berth by its command line");
        }
    }

    /// Records the exit of every container whose shim reported one (or
    /// whose shim was lost: see [`Self::shim_lost`]), then applies the
    /// restart policy.
    pub async fn reap_exits(self: &Arc<Self>) {
        let Ok(all) = self.store.list_containers() else { return };
        for c in all.into_iter().filter(|c| c.state == ContainerState::Running) {
            let sd = self.state_dir(&c.id);
            if !sd.exit().exists() && self.shim_liveness(&c) == Liveness::Alive {
                continue;
            }
            let _guard = self.lock(&c.id).await;
            // Another caller may have handled this exit meanwhile.
            let Ok(Some(mut c)) = self.store.get_container(&c.id) else { continue };
            if c.state != ContainerState::Running {
                continue;
            }
            let exit = match sd.read_exit() {
                Some(e) => e,
                None => match self.shim_liveness(&c) {
                    Liveness::Alive => continue,
                    // It may have written the exit just before it ended.
                    Liveness::Lost(why) => match sd.read_exit() {
                        Some(e) => e,
                        None => self.shim_lost(&c, why).await,
                    },
                },
            };
            let ran_for = view::ran_for(c.started_at.as_deref(), &exit.finished_at);
            c.state = ContainerState::Exited;
            c.exit_code = Some(exit.code);
            c.exit_signal = exit.signal;
            c.oom_killed = exit.oom_killed;
            c.finished_at = Some(exit.finished_at.clone());
            c.error = exit.error.clone();
            c.pid = None;
            if exit.oom_killed {
                self.event(&c, "oom", &[]);
            }
            self.event(&c, "die", &[("exit_code", exit.code.to_string())]);
            // After the events: this stores the exited state, which wakes
            // `wait`, and a waiter then finds the events in place.
            self.detach_network(&mut c).await;
            let req = c.request.clone();
            let policy: RestartPolicy = req.restart.as_deref().unwrap_or("no").parse().unwrap_or_default();
            if req.auto_remove {
                self.recent_exits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(c.id.clone(), WaitResponse { exit_code: exit.code, error: exit.error.clone() });
                let _ = self.store.put_container(&c);
                let _ = self.remove_locked(&c).await;
                continue;
            }
            if policy.should_restart(exit.code, c.restart_count, c.stopped_by_user) {
                let backoff = Backoff { max: self.settings.backoff_max, ..Backoff::CONTAINER };
                let delay = backoff.next(c.backoff_ms.map(Duration::from_millis), ran_for);
                c.state = ContainerState::Restarting;
                c.backoff_ms = Some(delay.as_millis() as u64);
                let _ = self.store.put_container(&c);
                self.changed.notify_waiters();
                let this = Arc::clone(self);
                let id = c.id.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    this.restart_after_backoff(&id).await;
                });
                continue;
            }
            let _ = self.store.put_container(&c);
            self.changed.notify_waiters();
        }
    }

    /// The shim of `c` is gone without recording an exit (killed, or the
    /// host rebooted) or its PID is someone else's now: nobody reaps the
    /// container any more, so what is left of it is deleted
    /// (`runc delete --force` kills its processes) and the exit recorded
    /// says why. Never leaves a ghost "running".
    async fn shim_lost(&self, c: &ContainerRecord, why: Lost) -> ExitRecord {
        tracing::warn!(container = %c.name, shim_pid = ?c.shim_pid, reason = %why, "shim lost; deleting the container");
        let runtime = Arc::clone(&self.runtime);
        let id = c.id.clone();
        let deleted = tokio::task::spawn_blocking(move || runtime.delete(&id, true)).await;
        let failed = match deleted {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        let error = match failed {
            None => format!("shim lost: {why}; berth deleted what was left of the container (runc delete --force)"),
            Some(e) => format!("shim lost: {why}; deleting what was left of the container failed: {e}"),
        };
        ExitRecord { code: 255, signal: None, finished_at: self.now(), oom_killed: false, error: Some(error) }
    }

    async fn restart_after_backoff(self: &Arc<Self>, id: &str) {
        let _guard = self.lock(id).await;
        let Ok(Some(mut c)) = self.store.get_container(id) else { return };
        if c.state != ContainerState::Restarting || c.stopped_by_user {
            return;
        }
        c.restart_count += 1;
        let backoff = c.backoff_ms;
        self.event(&c, "restart", &[("restart_count", c.restart_count.to_string())]);
        match self.start_locked(c.clone()).await {
            Ok(mut started) => {
                // Keep the backoff so the next crash doubles it.
                started.backoff_ms = backoff;
                let _ = self.store.put_container(&started);
            }
            Err(e) => tracing::warn!(container = %c.name, error = %e, "restart failed"),
        }
    }

    /// Cleans up what a crash left half-made: bundles, shim state, runtime
    /// records and root filesystems of containers the store does not know
    /// (a create cut short). Only berth's own directories are looked at.
    pub fn recover(&self) {
        let known: std::collections::HashSet<String> =
            self.store.list_containers().unwrap_or_default().into_iter().map(|c| c.id).collect();
        let mut orphans = std::collections::BTreeSet::new();
        for dir in [self.root.clone(), self.run_root.clone(), self.images.root().join("snapshots")] {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if ContainerId::parse(&name).is_ok() && !known.contains(&name) {
                        orphans.insert(name);
                    }
                }
            }
        }
        for id in orphans {
            tracing::warn!(container = %id, "removing what an interrupted create left behind");
            let _ = self.runtime.delete(&id, true);
            self.cleanup_files(&id);
        }
    }

    /// Removes the shims' cgroup once no shim is in it (rmdir fails on a
    /// busy cgroup); a shim starting meanwhile makes it again.
    fn remove_empty_shim_cgroup(&self) {
        for dir in self.cgroups.joinable(&self.shim_cgroup()) {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Removes the cgroup parent directories if no container uses them
    /// (rmdir fails on a busy cgroup, which is what keeps running ones).
    pub fn remove_empty_cgroup_parent(&self) {
        // The shims' first: running shims keep it (and so the parent).
        self.remove_empty_shim_cgroup();
        let parent = self.settings.cgroup_parent.trim_matches('/');
        if parent.is_empty() {
            return;
        }
        for dir in self.cgroups.dirs(parent) {
            let _ = std::fs::remove_dir(dir);
        }
    }

    pub(crate) fn running(&self, key: &str) -> Result<ContainerRecord> {
        let c = self.resolve(key)?;
        if c.state != ContainerState::Running {
            return Err(ContainerError::Conflict(format!("container {} is not running", c.name)));
        }
        Ok(c)
    }

    /// Counters from the container's cgroup.
    pub fn stats(&self, key: &str) -> Result<berth_core::api::ContainerStats> {
        let c = self.running(key)?;
        Ok(self.cgroups.stats(&self.cgroups_path(&c.id), self.now()))
    }

    /// The container's processes, as `ps` shows them (through the runtime,
    /// which knows which host PIDs are the container's).
    pub fn top(&self, key: &str, ps_args: &str) -> Result<berth_core::api::ContainerTop> {
        let c = self.running(key)?;
        let args: Vec<&str> = ps_args.split_whitespace().collect();
        let out = self
            .runc
            .command()
            .args(["ps", &c.id])
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| ContainerError::Io(format!("cannot run {}: {e}", self.runc.binary.display())))?;
        if !out.status.success() {
            return Err(ContainerError::Invalid(format!(
                "ps {ps_args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(view::parse_ps(&String::from_utf8_lossy(&out.stdout)))
    }

    pub fn log_file(&self, key: &str) -> Result<(ContainerRecord, PathBuf)> {
        let c = self.resolve(key)?;
        let path = self.log_path(&c.id);
        Ok((c, path))
    }

    /// Makes the container's network real before it starts, and records it.
    async fn attach_network(&self, c: &mut ContainerRecord) -> Result<()> {
        let req = c.request.clone();
        if let Some(other) = req.networks.first().and_then(|n| n.strip_prefix("container:")) {
            let o = self.resolve(other)?;
            if o.state != ContainerState::Running {
                return Err(ContainerError::Conflict(format!(
                    "container {} shares the network of {}, which is not running; start it first",
                    c.name, o.name
                )));
            }
        }
        // The image config is read only when -P needs its exposed ports.
        let exposed = if req.publish_all {
            self.images.inspect(&c.image_digest.to_string()).map(|i| i.config.exposed_ports).unwrap_or_default()
        } else {
            Vec::new()
        };
        let hostname = req.hostname.clone().unwrap_or_else(|| c.id[..12].to_string());
        c.network = self.networks.attach(c, &req, &exposed, &self.bundle(&c.id), &hostname).await?;
        if c.network.networks.is_empty() {
            return Ok(());
        }
        let stored = self.store.put_container(c).map_err(ContainerError::from);
        let synced = match stored {
            Ok(()) => self.networks.sync().await.map_err(ContainerError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            self.detach_network(c).await;
            let _ = self.store.put_container(c);
            return Err(e);
        }
        Ok(())
    }

    /// Undoes [`Self::attach_network`]; the caller stores the record.
    async fn detach_network(&self, c: &mut ContainerRecord) {
        if c.network.networks.is_empty() && c.network.mode != "bridge" {
            return;
        }
        let n = c.network.networks.len();
        c.network = Default::default();
        // The rules are derived from the records: drop this one's first.
        let _ = self.store.put_container(c);
        if let Err(e) = self.networks.detach(&c.id, n).await {
            tracing::warn!(container = %c.name, error = %e, "network cleanup failed");
        }
    }

    /// Gives a container another name; its DNS answers change at once.
    pub async fn rename(&self, key: &str, name: &str) -> Result<ContainerRecord> {
        validate_name(name).map_err(|e| ContainerError::Invalid(e.to_string()))?;
        let (mut c, _guard) = self.resolve_locked(key).await?;
        if self.store.list_containers()?.iter().any(|o| o.name == name && o.id != c.id) {
            return Err(ContainerError::Conflict(format!(
                "the name {name:?} is already in use by another container; choose another or remove that one"
            )));
        }
        let old = std::mem::replace(&mut c.name, name.to_string());
        self.store.put_container(&c)?;
        self.networks.sync().await?;
        self.event(&c, "rename", &[("old_name", old)]);
        Ok(c)
    }

    /// `network connect`: a running container joins one more network.
    pub async fn connect(&self, key: &str, network: &str, aliases: &[String]) -> Result<ContainerRecord> {
        let (mut c, _guard) = self.resolve_locked(key).await?;
        if c.state != ContainerState::Running {
            return Err(ContainerError::Conflict(format!(
                "container {} is not running; give --network when creating it instead",
                c.name
            )));
        }
        let a = self.networks.connect(&c, network, aliases).await?;
        c.network.networks.push(a);
        self.store.put_container(&c)?;
        self.networks.sync().await?;
        self.event(&c, "connect", &[("network", network.to_string())]);
        Ok(c)
    }

    /// `network disconnect`: a running container leaves one network.
    pub async fn disconnect(&self, key: &str, network: &str) -> Result<ContainerRecord> {
        let (mut c, _guard) = self.resolve_locked(key).await?;
        let Some(pos) = c.network.networks.iter().position(|a| a.network == network) else {
            return Err(ContainerError::Conflict(format!("container {} is not on network {network:?}", c.name)));
        };
        if pos == 0 && !c.network.ports.is_empty() {
            return Err(ContainerError::Conflict(format!(
                "container {}'s published ports are on network {network:?}; remove the container to leave it",
                c.name
            )));
        }
        let a = c.network.networks.remove(pos);
        self.networks.disconnect(&c, &a).await?;
        self.store.put_container(&c)?;
        self.networks.sync().await?;
        self.event(&c, "disconnect", &[("network", network.to_string())]);
        Ok(c)
    }

    /// IDs of every container the store knows.
    pub fn ids(&self) -> std::collections::BTreeSet<String> {
        self.store.list_containers().unwrap_or_default().into_iter().map(|c| c.id).collect()
    }

    pub fn any_running(&self) -> bool {
        self.store.list_containers().unwrap_or_default().iter().any(|c| c.state == ContainerState::Running)
    }

    /// Completes when some container's state changes (an exit, a removal);
    /// `enable` it before looking at the state so no change is missed.
    pub fn state_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    pub fn is_running(&self, id: &str) -> bool {
        self.store
            .get_container(id)
            .ok()
            .flatten()
            .is_some_and(|c| c.state == ContainerState::Running || c.state == ContainerState::Restarting)
    }
}

/// Records `shim` as the shim of `c`.
fn set_shim(c: &mut ContainerRecord, shim: &Known) {
    c.shim_pid = Some(shim.pid());
    (c.shim_start_time, c.shim_boot_id) = match shim {
        Known::Identity(i) => (Some(i.start_time), Some(i.boot_id.clone())),
        Known::Pid(_) => (None, None),
    };
}

/// Tells the image store which images containers use.
pub struct ContainerImageUsers(pub Arc<dyn Store>);

impl berth_image::ImageUsers for ContainerImageUsers {
    fn users_of(&self, image: &berth_core::Digest) -> Vec<String> {
        self.0
            .list_containers()
            .map(|cs| cs.into_iter().filter(|c| c.image_digest == *image).map(|c| c.name).collect())
            .unwrap_or_default()
    }
}

/// The largest `/etc/passwd` or `/etc/group` the daemon reads from an image.
pub const MAX_USER_FILE: u64 = 4 << 20;

/// The image's `/etc/passwd` and `/etc/group` as the container sees them:
/// resolved inside its root filesystem (a symlink to a host path names
/// the image's own file), regular files only, at most [`MAX_USER_FILE`]
/// bytes each. A user given by name needs them readable; a numeric user
/// (or none, root) runs without them (no HOME or extra groups from them)
/// when the container has broken them. Blocks: call it off the async
/// workers.
pub(crate) fn user_files(rootfs: &std::path::Path, user: Option<&str>) -> Result<(Option<String>, Option<String>)> {
    let root = berth_saferoot::Root::open(rootfs)
        .map_err(|e| ContainerError::Io(format!("the container's root filesystem: {e}")))?;
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

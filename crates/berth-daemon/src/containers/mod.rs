//! Containers: create, start, stop, kill, remove, wait, logs, and the
//! monitor that notices exits and applies restart policies.
//!
//! Each container has a bundle (`config.json`) and log under the state
//! root, a shim state directory under the run root, and an overlay root
//! filesystem from the image store. The record in the store is the truth
//! about what the user asked for and what last happened; the shim's state
//! directory is the truth about the process, which is why a daemon restart
//! re-reads it and carries on.
//!
//! One file per part of the life: `create`, `start` (network and shim),
//! `stop` (stop, kill, remove, wait), `monitor` (exits, restarts, lost
//! shims, recovery at start), `exec`, `logs`, `stats`; `view` shapes what
//! the API shows, `userns` hands out id ranges, `secret_env` resolves
//! Secret references at start.

mod create;
pub(crate) use create::user_files;
mod exec;
pub mod logs;
mod monitor;
mod secret_env;
mod start;
pub mod stats;
mod stop;
pub mod userns;
mod view;

pub use exec::{resize, TtySession};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::api::{ContainerCreateRequest, ContainerInspect, ContainerSummary, IdMapping, WaitResponse};
use berth_core::container::{validate_name, ContainerId, ContainerState, RestartPolicy, Transition};
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
    /// A host operation failed: what Berth was doing, and the cause.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: crate::networks::BoxError,
    },
    /// Removal finished what it could; each entry names what is left and
    /// why.
    #[error("container {name} was only partly removed; left: {}; run 'berth rm -f {name}' again once that is fixed", left.join("; "))]
    PartlyRemoved { name: String, left: Vec<String> },
}

impl ContainerError {
    /// For `map_err`: a host operation failed while doing `what`.
    pub(crate) fn io<E: Into<crate::networks::BoxError>>(what: impl Into<String>) -> impl FnOnce(E) -> ContainerError {
        let what = what.into();
        move |e| ContainerError::Io { what, source: e.into() }
    }
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
    shims: Arc<dyn crate::host::ShimLauncher>,
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
            shims: Arc::clone(&host.shims),
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
        let out = match self.runtime.ps(&c.id, &args) {
            Ok(out) => out,
            Err(berth_shim::runtime::RuntimeError::Failed { detail, .. }) => {
                return Err(ContainerError::Invalid(format!("ps {ps_args:?} failed: {detail}")))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(view::parse_ps(&out))
    }

    pub fn log_file(&self, key: &str) -> Result<(ContainerRecord, PathBuf)> {
        let c = self.resolve(key)?;
        let path = self.log_path(&c.id);
        Ok((c, path))
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

#[cfg(test)]
mod tests;

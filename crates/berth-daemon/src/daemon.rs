//! Starting, serving and stopping the daemon.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use berth_image::ImageStore;
use berth_store::SqliteStore;
use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;

use crate::config::DaemonConfig;

pub struct DaemonOptions {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub socket: PathBuf,
    pub config: DaemonConfig,
}

/// The services every handler reaches.
pub struct Daemon {
    metrics_address: Option<std::net::SocketAddr>,
    audit: crate::config::AuditConfig,
    pub images: Arc<ImageStore>,
    pub events: Arc<crate::events::Events>,
    pub containers: Arc<crate::containers::Containers>,
    pub networks: Arc<crate::networks::Networks>,
    pub declared: Arc<crate::declared::Declared>,
    pub root: PathBuf,
    pub run_root: PathBuf,
    _lock: Flock<fs::File>,
}

impl Daemon {
    /// Opens the state under `opts.root`. Fails if another daemon holds it.
    pub fn open(opts: &DaemonOptions) -> anyhow::Result<Arc<Self>> {
        for dir in [&opts.root, &opts.run_root] {
            // Root-only from the start, and marked berth's own when berth
            // made it or found it empty; `secure_state_dirs` gives every
            // root its final mode at the end of the start-up.
            crate::state_dirs::claim(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let lock_path = opts.root.join("daemon.lock");
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        let lock = lock_state_root(lock_file).map_err(|e| {
            anyhow::anyhow!(
                "state root {} is in use by another berth daemon ({e}); stop it or pass a different --root",
                opts.root.display()
            )
        })?;
        let store = open_store(&opts.root)?;
        let users = Arc::new(crate::containers::ContainerImageUsers(Arc::clone(&store)));
        let settings = opts.config.containers.settings().map_err(|e| anyhow::anyhow!("{e}"))?;
        let net_settings = opts.config.network.settings().map_err(|e| anyhow::anyhow!("{e}"))?;
        // The composition root: every effect below is built here, once.
        let exe = std::env::current_exe().context("cannot find the berth binary")?;
        let host = crate::host::Host::real(
            &exe,
            &settings.runtime,
            &crate::containers::Containers::runtime_root(&opts.run_root),
            &net_settings.netns_dir,
            &opts.run_root.join("userns"),
        );
        let images = Arc::new(
            ImageStore::open(&opts.root.join("images"), Arc::clone(&store), opts.config.image_config(), users)?
                .with_mounts(Arc::clone(&host.mounts)),
        );
        let events = crate::events::Events::new(Arc::clone(&store), Arc::clone(&host.clock));
        let networks = crate::networks::Networks::new(Arc::clone(&store), net_settings, &host);
        let containers = crate::containers::Containers::new(
            Arc::clone(&store),
            Arc::clone(&networks),
            Arc::clone(&images),
            Arc::clone(&events),
            &host,
            &opts.root,
            &opts.run_root,
            settings,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let service_settings = opts.config.services.settings().map_err(|e| anyhow::anyhow!("{e}"))?;
        let declared = crate::declared::Declared::new(
            store,
            Arc::clone(&containers),
            Arc::clone(&networks),
            Arc::clone(&images),
            Arc::clone(&events),
            &host,
            &opts.root,
            &opts.run_root,
            service_settings,
        );
        let metrics_address = opts.config.metrics_socket_address().map_err(|e| anyhow::anyhow!("{e}"))?;
        // Last, once every directory of the store, images and containers
        // exists: roots made by hand or by an older berth are narrowed.
        secure_state_dirs(&opts.root, &opts.run_root)?;
        Ok(Arc::new(Self {
            metrics_address,
            audit: opts.config.audit.clone(),
            images,
            events,
            containers,
            networks,
            declared,
            root: opts.root.clone(),
            run_root: opts.run_root.clone(),
            _lock: lock,
        }))
    }

    /// A daemon over services built elsewhere: tests build them on a fake
    /// host ([`crate::testlab::Lab`]) and drive the API router over them.
    /// No metrics listener, the default audit retention; `root`'s lock is
    /// taken as [`Daemon::open`] takes it.
    #[cfg(test)]
    pub(crate) fn with_services(
        images: Arc<ImageStore>,
        events: Arc<crate::events::Events>,
        containers: Arc<crate::containers::Containers>,
        networks: Arc<crate::networks::Networks>,
        declared: Arc<crate::declared::Declared>,
        root: &Path,
        run_root: &Path,
    ) -> anyhow::Result<Arc<Self>> {
        fs::create_dir_all(root)?;
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(root.join("daemon.lock"))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| anyhow::anyhow!("{e}"))?;
        Ok(Arc::new(Self {
            metrics_address: None,
            audit: Default::default(),
            images,
            events,
            containers,
            networks,
            declared,
            root: root.to_path_buf(),
            run_root: run_root.to_path_buf(),
            _lock: lock,
        }))
    }

    /// Applies `[audit]`: the oldest entries past `max_entries` and those
    /// older than `max_age_days` go.
    async fn prune_audit(&self) {
        let events = Arc::clone(&self.events);
        let max_age = std::time::Duration::from_secs(self.audit.max_age_days.saturating_mul(86_400));
        let max_entries = self.audit.max_entries;
        match tokio::task::spawn_blocking(move || events.prune_audit(max_entries, max_age)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(removed = n, "pruned the audit log"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot prune the audit log"),
            Err(e) => tracing::warn!(error = %e, "pruning the audit log failed unexpectedly"),
        }
    }

    /// Serves the API until SIGINT or SIGTERM, then removes the socket.
    pub async fn serve(self: Arc<Self>, socket: &Path) -> anyhow::Result<()> {
        // Before serving anyone: clean up half-made containers and adopt
        // what happened while the daemon was away.
        let containers = Arc::clone(&self.containers);
        let _ = tokio::task::spawn_blocking(move || containers.recover()).await;
        self.networks.start().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        self.containers.adopt_legacy_shims().await;
        self.containers.reap_exits().await;
        self.networks.collect_garbage(&self.containers.ids()).await;
        // Someone flushing nftables (or a firewall reload) is repaired.
        let networks = Arc::clone(&self.networks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                match networks.repair().await {
                    Ok(true) => tracing::warn!("Berth's nftables table was changed by someone else; re-applied it"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "checking Berth's nftables table failed"),
                }
            }
        });
        let listener = bind_socket(socket).await?;
        tracing::info!(socket = %socket.display(), root = %self.root.display(), "berth daemon listening");
        let (router, _) = crate::api::router(Arc::clone(&self));
        if let Some(addr) = self.metrics_address {
            let tcp = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            let metrics = axum::Router::new()
                .route("/metrics", axum::routing::get(crate::api::metrics_handler))
                .with_state(Arc::clone(&self));
            tracing::info!(address = %addr, "serving metrics");
            tokio::spawn(async move {
                let _ = axum::serve(tcp, metrics).await;
            });
        }
        // The audit log's retention: at start (before anyone reads it),
        // then hourly.
        self.prune_audit().await;
        let this = Arc::clone(&self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                this.prune_audit().await;
            }
        });
        // Keep watching exits from now on.
        tokio::spawn(Arc::clone(&self.containers).monitor());
        // Adopt the pods and keep declared services as declared.
        self.declared.start();
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("signal handler installs");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            tracing::info!("shutting down");
        };
        let service = router.into_make_service_with_connect_info::<crate::api::Peer>();
        let result = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
        let _ = fs::remove_file(socket);
        // Containers keep running, and so do the rules and bridges they
        // need; with none running, everything of Berth's goes.
        self.containers.remove_empty_cgroup_parent();
        if !self.containers.any_running() && self.networks.sandbox_ids().is_empty() {
            self.networks.shutdown().await;
        }
        result.context("API server failed")
    }
}

/// Enforces the modes of the state and run roots (see
/// [`crate::state_dirs`]). The roots themselves must be narrowed; a file
/// below that cannot be is logged.
fn secure_state_dirs(root: &Path, run_root: &Path) -> anyhow::Result<()> {
    let report = crate::state_dirs::secure(root, run_root);
    for (path, old) in &report.narrowed {
        tracing::info!(path = %path.display(), old_mode = format!("{old:o}"), "narrowed the mode of a state path");
    }
    for shared in &report.shared_roots {
        tracing::warn!(
            path = %shared.display(),
            "this root holds files that are not Berth's, so its own mode is left alone; Berth's directories in it are closed"
        );
    }
    for e in report.errors {
        tracing::warn!(error = %e, "cannot secure a state path");
    }
    match report.fatal.into_iter().next() {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The store: SQLite, with Secrets sealed under a key kept beside it
/// (`secrets.key`, 0600), so the database and its copies never hold a
/// Secret's value in the clear. Secrets an older berth stored are sealed
/// now.
fn open_store(root: &Path) -> anyhow::Result<Arc<dyn berth_store::Store>> {
    let sqlite: Arc<dyn berth_store::Store> = Arc::new(SqliteStore::open(&root.join("state.db"))?);
    let key = berth_store::SealKey::load_or_create(&root.join("secrets.key"))?;
    let sealed = berth_store::SealedStore::new(sqlite, key, &[crate::declared::SECRET_STORE_KIND]);
    let n = sealed.seal_existing()?;
    if n > 0 {
        tracing::info!(secrets = n, "sealed Secrets stored in the clear by an older berth");
    }
    Ok(Arc::new(sealed))
}

/// Binds the API socket, mode 0600. A stale socket file from a crashed
/// daemon is replaced; a live one means another daemon is running.
async fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "another berth daemon is already listening on {}; stop it or pass a different --run-root",
                path.display()
            );
        }
        fs::remove_file(path).with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    // Create the socket with a restrictive umask so it is never, even
    // briefly, reachable by others.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Takes the state root's lock. A daemon restarted at once after a crash
/// may find it held for a moment by a process the old one was starting
/// (between its fork and its exec), so a held lock is retried for up to
/// three seconds before another daemon is taken to be running.
fn lock_state_root(file: fs::File) -> Result<Flock<fs::File>, nix::errno::Errno> {
    let deadline = Instant::now() + std::time::Duration::from_secs(3);
    let mut file = file;
    let mut waited = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, nix::errno::Errno::EAGAIN)) if Instant::now() < deadline => {
                if !waited {
                    tracing::info!("the state root's lock is held; waiting up to 3 s for it");
                    waited = true;
                }
                file = f;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err((_, e)) => return Err(e),
        }
    }
}

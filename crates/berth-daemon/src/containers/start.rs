//! Starting a container: its network made real, its shim launched, and
//! the shim's first word awaited.

use super::*;

impl Containers {
    /// Starts a created or exited container and waits until its process
    /// runs (or failed to).
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<ContainerRecord> {
        let (c, _guard) = self.resolve_locked(key).await?;
        self.start_locked(c).await
    }

    pub(super) async fn start_locked(self: &Arc<Self>, mut c: ContainerRecord) -> Result<ContainerRecord> {
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
                tracing::info!(container = %c.name, "adopted a container started before the daemon restarted");
                return self.adopt(c, &shim);
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
            .map_err(ContainerError::io("mounting the root filesystem"))??;
        let _ = std::fs::remove_dir_all(&sd.0);
        std::fs::create_dir_all(&sd.0).map_err(ContainerError::io(format!("creating {}", sd.0.display())))?;
        std::fs::create_dir_all(&self.runc.root)
            .map_err(ContainerError::io(format!("creating {}", self.runc.root.display())))?;
        // A leftover runtime record (after a crash) would block create.
        let _ = self.runtime.delete(&c.id, true);
        self.reveal_secret_env(&c)?;
        self.attach_network(&mut c).await?;

        let args = berth_shim::ShimArgs {
            id: c.id.clone(),
            bundle: self.bundle(&c.id),
            state_dir: sd.0.clone(),
            runtime: self.runc.binary.clone(),
            runtime_root: self.runc.root.clone(),
            log_path: self.log_path(&c.id),
            log_max_size: self.settings.log_max_size,
            log_max_files: self.settings.log_max_files,
            oom_files: self.oom_files(&c.id),
            cgroups: self.cgroups.joinable(&self.shim_cgroup()),
        };
        let launched = match self.shims.launch(&args) {
            Ok(launched) => launched,
            Err(e) => {
                self.detach_network(&mut c).await;
                return Err(ContainerError::Io { what: "cannot start the shim".into(), source: e.into() });
            }
        };
        // Who the shim is, read before anything can reap it (its PID
        // cannot be reused while it is unreaped).
        let shim = launched.pid.map(|pid| match self.procs.identity(pid) {
            Some(id) => Known::Identity(id),
            None => Known::Pid(pid),
        });
        // The shim says `started`, then `exited` once the exit record is on
        // disk (see berth_shim::run); its stdout closing means the same.
        let (mut notices, reaped) = (launched.notices, launched.reaped);
        let first = tokio::time::timeout(Duration::from_secs(30), notices.recv()).await;
        // Reap the shim when it ends (so it never lingers as a zombie) and
        // record the exit at once rather than at the monitor's next look.
        let this = Arc::clone(self);
        tokio::spawn(async move {
            while let Some(line) = notices.recv().await {
                if line == "exited" {
                    break;
                }
            }
            this.exited.notify_one();
            reaped.await;
            this.exited.notify_one();
        });
        match first {
            Ok(Some(line)) if line == "started" => {}
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
                    shim_pid: None,
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

    pub(super) fn event(&self, c: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attrs = vec![("image", c.image.clone())];
        attrs.extend(extra.iter().cloned());
        self.events.emit("container", action, &c.id, &c.name, &attrs);
    }
}

impl Containers {
    /// Makes the container's network real before it starts, and records it.
    pub(super) async fn attach_network(&self, c: &mut ContainerRecord) -> Result<()> {
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
    pub(super) async fn detach_network(&self, c: &mut ContainerRecord) {
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

    /// Records `c` as running under the shim `shim` found alive.
    fn adopt(&self, mut c: ContainerRecord, shim: &Known) -> Result<ContainerRecord> {
        let sd = self.state_dir(&c.id);
        c.state = ContainerState::Running;
        c.pid = StateDir::read_pid(&sd.init_pid());
        set_shim(&mut c, shim);
        c.started_at.get_or_insert_with(|| self.now());
        c.finished_at = None;
        c.exit_code = None;
        self.store.put_container(&c)?;
        Ok(c)
    }
}

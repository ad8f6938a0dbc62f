//! Watching containers: exits noticed and recorded, restart policies
//! applied after their back-off, lost shims turned into exits, and what a
//! crash left behind cleaned up at start.

use super::*;

impl Containers {
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
                // Written by a shim of an earlier start (a killed daemon's),
                // not by this container's: not its exit.
                Some(e) if e.shim_pid.is_some() && c.shim_pid.is_some() && e.shim_pid != c.shim_pid => {
                    tracing::warn!(container = %c.name, writer = ?e.shim_pid, shim = ?c.shim_pid, "ignored an exit record an earlier shim wrote");
                    let _ = std::fs::remove_file(sd.exit());
                    continue;
                }
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
            let policy = req.restart.unwrap_or_default();
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
                let backoff = berth_control::CrashBackoff::CONTAINER.capped_at(self.settings.backoff_max);
                let delay = backoff.next_delay(c.backoff_ms.map(Duration::from_millis), ran_for);
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
    pub(super) async fn shim_lost(&self, c: &ContainerRecord, why: Lost) -> ExitRecord {
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
        ExitRecord {
            code: 255,
            signal: None,
            finished_at: self.now(),
            oom_killed: false,
            error: Some(error),
            shim_pid: None,
        }
    }

    pub(super) async fn restart_after_backoff(self: &Arc<Self>, id: &str) {
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
    pub(super) fn remove_empty_shim_cgroup(&self) {
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
}

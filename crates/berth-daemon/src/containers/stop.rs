//! Stopping, killing, removing and waiting for containers.

use super::*;

impl Containers {
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
    pub(super) fn mark_stopped(&self, mut c: ContainerRecord) -> Result<ContainerRecord> {
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
    pub(super) async fn wait_exit(&self, c: &ContainerRecord, within: Duration) -> bool {
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

    /// Tears the container down: every step is tried whatever failed
    /// before it. If any failed, the record stays (so `rm -f` again
    /// finishes the rest) and the error lists what is left.
    pub(super) async fn remove_locked(&self, c: &ContainerRecord) -> Result<String> {
        // The shim deletes the runtime's record after it reported the exit;
        // let it finish rather than race it.
        self.wait_shim_gone(c, Duration::from_secs(10)).await;
        self.remove_empty_shim_cgroup();
        // Idempotent, and absent after a clean exit: nothing to report.
        let _ = self.runtime.delete(&c.id, true);
        let mut c = c.clone();
        self.detach_network(&mut c).await;
        let c = &c;
        let mut left: Vec<String> = Vec::new();
        let images = Arc::clone(&self.images);
        let id = c.id.clone();
        match tokio::task::spawn_blocking(move || images.remove_rootfs(&id)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => left.push(format!("its root filesystem: {e}")),
            Err(e) => left.push(format!("its root filesystem: {e}")),
        }
        for (what, dir) in [("its bundle", self.bundle(&c.id)), ("its shim state", self.state_dir(&c.id).0)] {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => left.push(format!("{what} {}: {e}", dir.display())),
            }
        }
        if !left.is_empty() {
            return Err(ContainerError::PartlyRemoved { name: c.name.clone(), left });
        }
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
}

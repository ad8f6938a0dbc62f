//! A daemon's services on a fake host, for hermetic tests: a store in
//! memory, an image store on a temporary directory with fake mounts, the
//! network, container and declared services over [`Host::fake`], and one
//! small image (`app:1`) imported as a user would.

use std::sync::Arc;
use std::time::Duration;

use berth_core::api::ImportRequest;
use berth_image::ImageStore;
use berth_store::{ContainerRecord, FakeStore, Store};

use crate::containers::{userns, ContainerImageUsers, ContainerSettings, Containers};
use crate::host::{Fakes, Host};

pub(crate) struct Lab {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) host: Host,
    pub(crate) fakes: Fakes,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) events: Arc<crate::events::Events>,
    pub(crate) nets: Arc<crate::networks::Networks>,
    pub(crate) containers: Arc<Containers>,
}

impl Lab {
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (host, fakes) = Host::fake(dir.path());
        let store: Arc<dyn Store> = Arc::new(FakeStore::new());
        let users = Arc::new(ContainerImageUsers(Arc::clone(&store)));
        let images = Arc::new(
            ImageStore::open(&dir.path().join("images"), Arc::clone(&store), Default::default(), users)
                .unwrap()
                .with_mounts(Arc::clone(&host.mounts)),
        );
        let events = crate::events::Events::new(Arc::clone(&store), Arc::clone(&host.clock));
        let config = crate::config::NetworkConfig {
            prefix: "bt".into(),
            netns_dir: dir.path().join("netns").display().to_string(),
            ..Default::default()
        };
        let settings = config.settings().unwrap();
        let nets = crate::networks::Networks::new(Arc::clone(&store), settings, &host);
        nets.start().await.unwrap();
        let mut lab = Self {
            containers: Self::service(&dir, &host, &store, &images, &events, &nets),
            dir,
            host,
            fakes,
            store,
            images,
            events,
            nets,
        };
        lab.import_app().await;
        lab
    }

    /// A container service over this lab's store and directories: a
    /// second one is what a restarted daemon has.
    pub(crate) fn service(
        dir: &tempfile::TempDir,
        host: &Host,
        store: &Arc<dyn Store>,
        images: &Arc<ImageStore>,
        events: &Arc<crate::events::Events>,
        nets: &Arc<crate::networks::Networks>,
    ) -> Arc<Containers> {
        let settings = ContainerSettings {
            runtime: "/usr/sbin/runc".into(),
            cgroup_parent: "berth-test".into(),
            log_max_size: 1 << 20,
            log_max_files: 2,
            backoff_max: Duration::from_secs(10),
            default_pids_limit: Some(4096),
            userns_pool: userns::parse_range(userns::DEFAULT_RANGE).unwrap(),
        };
        Containers::new(
            Arc::clone(store),
            Arc::clone(nets),
            Arc::clone(images),
            Arc::clone(events),
            host,
            &dir.path().join("root"),
            &dir.path().join("run"),
            settings,
        )
        .unwrap()
    }

    pub(crate) fn restarted(&self) -> Arc<Containers> {
        Self::service(&self.dir, &self.host, &self.store, &self.images, &self.events, &self.nets)
    }

    /// The declared services (Deployments, Services, Rollouts) over this
    /// lab's services, with a one-second crash back-off; the containers'
    /// exit monitor runs, as in the daemon.
    pub(crate) fn declared(&self) -> Arc<crate::declared::Declared> {
        tokio::spawn(Arc::clone(&self.containers).monitor());
        let backoff = berth_control::CrashBackoff::try_new(
            Duration::from_secs(1),
            Duration::from_secs(10),
            Duration::from_secs(60),
        )
        .unwrap();
        crate::declared::Declared::new(
            Arc::clone(&self.store),
            Arc::clone(&self.containers),
            Arc::clone(&self.nets),
            Arc::clone(&self.images),
            Arc::clone(&self.events),
            &self.host,
            &self.dir.path().join("root"),
            &self.dir.path().join("run"),
            crate::declared::ServiceSettings { backoff, drain_timeout: Duration::from_secs(1) },
        )
    }

    /// `app:1`: a root filesystem with one program, imported as a user
    /// would import a directory.
    async fn import_app(&mut self) {
        let rootfs = self.dir.path().join("app-rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::write(rootfs.join("bin/app"), b"#!/bin/sh\n").unwrap();
        let req = ImportRequest {
            path: rootfs.display().to_string(),
            tag: Some("app:1".into()),
            config_cmd: Some(vec!["/bin/app".into()]),
            ..Default::default()
        };
        self.images.import(req).await.unwrap();
    }

    pub(crate) fn record(&self, key: &str) -> ContainerRecord {
        self.containers.resolve(key).unwrap()
    }

    pub(crate) fn events_of(&self, action: &str) -> usize {
        self.events.history(None).unwrap().iter().filter(|e| e.action == action).count()
    }
}

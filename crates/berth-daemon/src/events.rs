//! Events and the audit log.
//!
//! An event is recorded once, typed, and from that one record come the
//! store entry, the log line and the live stream, so they never disagree.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_core::api::{AuditRecord, Event};
use berth_store::{Log, Store};
use tokio::sync::broadcast;

/// One entry of a log. An entry this berth cannot read (written by a newer
/// one, or damaged) is skipped with a warning naming it: the rest of the
/// log stays readable.
fn logged<T: serde::de::DeserializeOwned>(log: &str, seq: i64, v: serde_json::Value) -> Option<T> {
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(log, seq, error = %e, "skipping an unreadable log entry");
            None
        }
    }
}

pub struct Events {
    store: Arc<dyn Store>,
    live: broadcast::Sender<Event>,
    clock: Arc<dyn berth_core::clock::Clock>,
}

impl Events {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn berth_core::clock::Clock>) -> Arc<Self> {
        let (live, _) = broadcast::channel(1024);
        Arc::new(Self { store, live, clock })
    }

    /// The daemon's clock.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Now, as events and audit entries stamp it.
    pub fn now(&self) -> String {
        self.clock.stamp()
    }

    /// Records and publishes an event. Never fails the caller: an event that
    /// cannot be stored is still logged.
    pub fn emit(&self, kind: &str, action: &str, id: &str, name: &str, attributes: &[(&str, String)]) {
        let mut e = Event {
            seq: 0,
            time: self.now(),
            kind: kind.to_string(),
            action: action.to_string(),
            id: id.to_string(),
            name: name.to_string(),
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
        };
        match self.store.append(Log::Events, &e.time, &serde_json::to_value(&e).expect("event serialises")) {
            Ok(seq) => e.seq = seq,
            Err(err) => tracing::error!(error = %err, "cannot record an event"),
        }
        tracing::info!(target: "berth::event", kind = %e.kind, action = %e.action, id = %e.id, name = %e.name, attributes = ?e.attributes, "event");
        let _ = self.live.send(e);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// Recorded events since `since` (RFC 3339), oldest first. A store
    /// that cannot be read is an error, never an empty history.
    pub fn history(&self, since: Option<&str>) -> Result<Vec<Event>, berth_store::StoreError> {
        Ok(self
            .store
            .read_log(Log::Events, since, 100_000)?
            .into_iter()
            .filter_map(|(seq, v)| logged::<Event>("event", seq, v).map(|e| Event { seq, ..e }))
            .collect())
    }

    pub fn audit(&self, rec: &AuditRecord) {
        if let Err(err) =
            self.store.append(Log::Audit, &rec.time, &serde_json::to_value(rec).expect("audit serialises"))
        {
            tracing::error!(error = %err, "cannot record an audit entry");
        }
        tracing::info!(target: "berth::audit", uid = ?rec.uid, pid = ?rec.pid, method = %rec.method, path = %rec.path,
            status = rec.status, ok = rec.ok, summary = %rec.summary, error = rec.error.as_deref().unwrap_or(""), "api call");
    }

    /// The latest audit entries since `since` (RFC 3339), newest first, at
    /// most `limit`.
    pub fn audit_history(
        &self,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, berth_store::StoreError> {
        Ok(self
            .store
            .read_log_newest(Log::Audit, since, limit)?
            .into_iter()
            .filter_map(|(seq, v)| logged::<AuditRecord>("audit", seq, v))
            .collect())
    }

    /// Applies the audit log's retention: entries past `max_entries` (the
    /// oldest first) and older than `max_age` go; 0 means no limit.
    /// Returns how many went.
    pub fn prune_audit(&self, max_entries: u64, max_age: std::time::Duration) -> Result<u64, berth_store::StoreError> {
        let before = (!max_age.is_zero()).then(|| {
            let age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
            let cutoff = self.clock.now().checked_sub_signed(age).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
            cutoff.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        });
        self.store.prune_log(Log::Audit, (max_entries > 0).then_some(max_entries), before.as_deref())
    }
}

/// `type=container`, `event=die`, `container=NAME_OR_ID`, `image=NAME`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pairs: Vec<(String, String)>,
}

impl EventFilter {
    /// Parses comma-separated `key=value` pairs; the same key may repeat
    /// (any of its values matches), different keys must all match.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("filter {part:?} must be KEY=VALUE"))?;
            if !["type", "event", "container", "image"].contains(&k) {
                return Err(format!("unknown filter key {k:?}; use type, event, container or image"));
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(Self { pairs })
    }

    pub fn matches(&self, e: &Event) -> bool {
        let mut keys: Vec<&str> = self.pairs.iter().map(|(k, _)| k.as_str()).collect();
        keys.dedup();
        keys.iter().all(|key| {
            self.pairs.iter().filter(|(k, _)| k == key).any(|(_, v)| match *key {
                "type" => e.kind == *v,
                "event" => e.action == *v,
                "container" => e.kind == "container" && (e.name == *v || e.id.starts_with(v.as_str())),
                "image" => e.attributes.get("image").is_some_and(|i| i == v) || (e.kind == "image" && e.name == *v),
                _ => false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, name: &str) -> Event {
        Event {
            seq: 1,
            time: "t".into(),
            kind: kind.into(),
            action: action.into(),
            id: "abcdef".into(),
            name: name.into(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn filters_and_or() {
        let f = EventFilter::parse("type=container,event=die,event=start").unwrap();
        assert!(f.matches(&ev("container", "die", "web")));
        assert!(f.matches(&ev("container", "start", "web")));
        assert!(!f.matches(&ev("container", "create", "web")));
        assert!(!f.matches(&ev("image", "die", "web")));
        let f = EventFilter::parse("container=abc").unwrap();
        assert!(f.matches(&ev("container", "die", "web")));
        assert!(EventFilter::parse("colour=red").is_err());
        assert!(EventFilter::parse("type").is_err());
        assert!(EventFilter::parse("").unwrap().matches(&ev("image", "pull", "x")));
    }

    fn audit(time: &str, n: usize) -> AuditRecord {
        AuditRecord {
            time: time.into(),
            uid: Some(0),
            pid: None,
            method: "POST".into(),
            path: format!("/v1/containers/c{n}/start"),
            status: 200,
            summary: format!("start container=c{n}"),
            ok: true,
            error: None,
        }
    }

    #[test]
    fn the_audit_log_shows_the_newest_first_and_keeps_what_it_is_told() {
        let clock = Arc::new(berth_core::clock::FakeClock::at_epoch());
        let events = Events::new(Arc::new(berth_store::FakeStore::new()), clock.clone());
        let old = events.now();
        clock.advance(std::time::Duration::from_secs(100 * 86_400));
        events.audit(&audit(&old, 0));
        let recent = events.now();
        for n in 1..=5 {
            events.audit(&audit(&recent, n));
        }
        let paths = |v: Vec<AuditRecord>| v.into_iter().map(|r| r.summary).collect::<Vec<_>>();
        assert_eq!(paths(events.audit_history(None, 2).unwrap()), ["start container=c5", "start container=c4"]);
        assert_eq!(events.audit_history(Some(&recent), 100).unwrap().len(), 5);
        // 90 days: the 100-day-old entry goes; then by count.
        assert_eq!(events.prune_audit(0, std::time::Duration::from_secs(90 * 86_400)).unwrap(), 1);
        assert_eq!(events.prune_audit(3, std::time::Duration::ZERO).unwrap(), 2);
        assert_eq!(
            paths(events.audit_history(None, 100).unwrap()),
            ["start container=c5", "start container=c4", "start container=c3"]
        );
        assert_eq!(events.prune_audit(0, std::time::Duration::ZERO).unwrap(), 0);
    }

    #[test]
    fn emitted_events_are_stored_and_streamed() {
        let events = Events::new(Arc::new(berth_store::FakeStore::new()), Arc::new(crate::host::SystemClock));
        let mut rx = events.subscribe();
        events.emit("container", "die", "abc", "web", &[("exit_code", "3".into())]);
        let live = rx.try_recv().unwrap();
        assert_eq!(live.attributes["exit_code"], "3");
        assert_eq!(events.history(None).unwrap(), vec![live]);
    }
}

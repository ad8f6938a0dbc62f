//! Wall-clock time as something the daemon is given, not something it
//! reads: services hold an `Arc<dyn Clock>`, the daemon's composition root
//! gives them the system's, and tests give them a [`FakeClock`] they move
//! by hand. Timestamps are stored and shown as RFC 3339 in UTC.

use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Now as a stored timestamp, with nanoseconds (records, events).
    fn stamp(&self) -> String {
        stamp(self.now())
    }
}

/// `t` as a stored timestamp: RFC 3339, UTC, nanoseconds.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `t` to the second, as Kubernetes shows `creationTimestamp`.
pub fn stamp_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A stored timestamp read back; `None` when it is not RFC 3339.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// A clock that stands still until moved: for tests of logic that reads
/// the time.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<DateTime<Utc>>,
}

impl FakeClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(start) }
    }

    /// Starts at 2026-01-01T00:00:00Z.
    pub fn at_epoch() -> Self {
        Self::new(DateTime::from_timestamp(1_767_225_600, 0).expect("valid time"))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::from_std(by).expect("a test's step fits");
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_clock_moves_only_when_told() {
        let c = FakeClock::at_epoch();
        assert_eq!(c.stamp(), "2026-01-01T00:00:00.000000000Z");
        c.advance(std::time::Duration::from_millis(1500));
        assert_eq!(stamp_secs(c.now()), "2026-01-01T00:00:01Z");
        assert_eq!(parse(&c.stamp()), Some(c.now()));
        assert_eq!(parse("yesterday"), None);
    }
}

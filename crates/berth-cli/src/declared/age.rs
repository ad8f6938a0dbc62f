//! Ages the way kubectl prints them: `45s`, `2m30s`, `3h`, `2d5h`, `400d`.
//! The clock is always passed in.

use chrono::{DateTime, Utc};

/// Reads a Kubernetes timestamp (RFC 3339).
pub fn parse(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts).ok().map(|t| t.with_timezone(&Utc))
}

/// Time since `ts` as kubectl's AGE column shows it; `<unknown>` when
/// there is no readable timestamp.
pub fn since(ts: Option<&str>, now: DateTime<Utc>) -> String {
    match ts.and_then(parse) {
        Some(t) => human((now - t).num_seconds()),
        None => "<unknown>".into(),
    }
}

/// A duration in seconds, coarser the longer it is: exact seconds under
/// two minutes, minutes and seconds under ten minutes, then minutes, hours
/// (with minutes under eight hours), days (with hours under eight days),
/// then years and days.
pub fn human(secs: i64) -> String {
    // A timestamp slightly ahead of this host's clock reads as now.
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    let with = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => with(m, "m", s % 60, "s"),
        _ if m < 3 * 60 => format!("{m}m"),
        _ if h < 8 => with(h, "h", m % 60, "m"),
        _ if h < 48 => format!("{h}h"),
        _ if h < 8 * 24 => with(d, "d", h % 24, "h"),
        _ if d < 2 * 365 => format!("{d}d"),
        _ if d < 8 * 365 => with(d / 365, "y", d % 365, "d"),
        _ => format!("{}y", d / 365),
    }
}

/// kubectl describe's timestamp form: `Mon, 02 Jan 2006 15:04:05 +0000`.
pub fn long(ts: &str) -> String {
    match parse(ts) {
        Some(t) => t.format("%a, %d %b %Y %H:%M:%S %z").to_string(),
        None => ts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_at_each_threshold() {
        for (secs, want) in [
            (0, "0s"),
            (-1, "0s"),
            (-5, "<invalid>"),
            (45, "45s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600 + 5 * 60, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (53 * 3600, "2d5h"),
            (8 * 86_400, "8d"),
            (400 * 86_400, "400d"),
            (730 * 86_400, "2y"),
            (735 * 86_400, "2y5d"),
            (9 * 365 * 86_400, "9y"),
        ] {
            assert_eq!(human(secs), want, "{secs}s");
        }
    }

    #[test]
    fn since_a_timestamp() {
        let now = parse("2026-03-01T12:00:00Z").unwrap();
        assert_eq!(since(Some("2026-03-01T11:55:00Z"), now), "5m");
        assert_eq!(since(Some("2026-03-01T12:55:00+01:00"), now), "5m");
        assert_eq!(since(Some("yesterday"), now), "<unknown>");
        assert_eq!(since(None, now), "<unknown>");
    }

    #[test]
    fn long_form() {
        assert_eq!(long("2026-03-02T09:05:00Z"), "Mon, 02 Mar 2026 09:05:00 +0000");
        assert_eq!(long("garbage"), "garbage");
    }
}

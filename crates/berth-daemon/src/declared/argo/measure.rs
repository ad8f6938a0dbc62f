//! Taking one measurement of an analysis metric: berth's own figures
//! (active HTTP checks against the canary's and the stable pods, readiness
//! probe success, restarts) or a Prometheus query. Whatever cannot be
//! measured is an error, never a success.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use berth_control::analysis_run::Measurement;
use berth_manifest::expr::Vars;
use berth_manifest::model::{Measure, Metric, Provider};

/// Requests each pod gets per HTTP check.
const CHECKS_PER_POD: usize = 10;
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(5);

/// What a measurement needs to know about the pods, read before it starts.
#[derive(Debug, Clone, Default)]
pub struct Subjects {
    /// Ready pod addresses (IP only; the port comes from the metric).
    pub canary: Vec<std::net::Ipv4Addr>,
    pub stable: Vec<std::net::Ipv4Addr>,
    /// A counter summed over the canary's pods: restarts, or readiness
    /// probe (successes, attempts).
    pub counter: (u64, u64),
    /// The revision measured, for messages.
    pub revision: String,
}

/// The outcome, the value as text, and the counter read (for the next
/// interval's baseline).
pub struct Taken {
    pub measurement: Measurement,
    pub value: Option<String>,
    pub counter: (u64, u64),
}

/// One measurement of `metric`. `baseline` is the counter at the last
/// measurement (or the run's start).
pub async fn take(metric: &Metric, subjects: Subjects, baseline: (u64, u64)) -> Taken {
    let counter = subjects.counter;
    let result = match &metric.provider {
        Provider::HttpCheck { path, port, measure } => http_checks(&subjects, path, *port, *measure).await,
        Provider::Probe(_) => {
            let (ok, all) = delta(counter, baseline);
            if all == 0 {
                Err(format!("no readiness probe ran on revision {}'s pods in the interval", subjects.revision))
            } else {
                Ok(Vars::result(ok as f64 / all as f64))
            }
        }
        Provider::Restarts => Ok(Vars::result(delta(counter, baseline).0 as f64)),
        Provider::Prometheus { address, query } => prometheus(address, query).await.map(Vars::result),
    };
    match result {
        Ok(vars) => {
            let value = vars.result.map(format_value);
            let measurement = match metric.assess(&vars) {
                Ok(a) => Measurement::Assessed(a),
                Err(e) => Measurement::Error(format!("cannot evaluate the conditions: {e}")),
            };
            Taken { measurement, value, counter }
        }
        Err(why) => Taken { measurement: Measurement::Error(why), value: None, counter },
    }
}

/// What a counter rose by since `baseline`; a counter that went down was
/// reset (a daemon restart forgets probe counts) and counts from zero.
fn delta(now: (u64, u64), baseline: (u64, u64)) -> (u64, u64) {
    if now.0 < baseline.0 || now.1 < baseline.1 {
        now
    } else {
        (now.0 - baseline.0, now.1 - baseline.1)
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// `result` is the figure on the canary's pods, `stable` the same on the
/// stable pods (absent when there are none).
async fn http_checks(s: &Subjects, path: &str, port: u16, measure: Measure) -> Result<Vars, String> {
    if s.canary.is_empty() {
        return Err(format!("revision {} has no ready pod to check", s.revision));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CHECK_TIMEOUT)
        .pool_max_idle_per_host(0)
        .user_agent("berth-analysis/1")
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    let figure = |pods: Vec<std::net::Ipv4Addr>| {
        let client = client.clone();
        let path = path.clone();
        async move {
            let checks = pods.into_iter().map(|ip| check_pod(&client, SocketAddrV4::new(ip, port), &path));
            let mut outcomes: Vec<(bool, Duration)> =
                futures::future::join_all(checks).await.into_iter().flatten().collect();
            figure_of(&mut outcomes, measure)
        }
    };
    let canary = figure(s.canary.clone()).await.ok_or_else(|| {
        format!("no request to revision {}'s pods was answered, so there is no latency to report", s.revision)
    })?;
    let mut vars = Vars::result(canary);
    if !s.stable.is_empty() {
        if let Some(stable) = figure(s.stable.clone()).await {
            vars = vars.with_stable(stable);
        }
    }
    Ok(vars)
}

/// One pod's checks, in sequence, each on a new connection as a client's.
async fn check_pod(client: &reqwest::Client, addr: SocketAddrV4, path: &str) -> Vec<(bool, Duration)> {
    let url = format!("http://{addr}{path}");
    let mut out = Vec::with_capacity(CHECKS_PER_POD);
    for _ in 0..CHECKS_PER_POD {
        let start = Instant::now();
        let ok = match client.get(&url).send().await {
            Ok(resp) => {
                let good = (200..400).contains(&resp.status().as_u16());
                // Read the body so the latency is the whole answer's,
                // never more than a bounded amount of it.
                crate::probes::body_capped(resp, MAX_CHECK_BODY).await.is_ok() && good
            }
            Err(_) => false,
        };
        out.push((ok, start.elapsed()));
    }
    out
}

/// The success ratio, or the 99th percentile latency (ms) of the answered
/// requests (`None` when none was answered).
pub fn figure_of(outcomes: &mut [(bool, Duration)], measure: Measure) -> Option<f64> {
    if outcomes.is_empty() {
        return None;
    }
    match measure {
        Measure::SuccessRatio => Some(outcomes.iter().filter(|(ok, _)| *ok).count() as f64 / outcomes.len() as f64),
        Measure::LatencyP99Ms => {
            let mut answered: Vec<Duration> = outcomes.iter().filter(|(ok, _)| *ok).map(|(_, d)| *d).collect();
            if answered.is_empty() {
                return None;
            }
            answered.sort();
            // Nearest rank.
            let rank = ((answered.len() as f64) * 0.99).ceil() as usize;
            Some(answered[rank.clamp(1, answered.len()) - 1].as_secs_f64() * 1000.0)
        }
    }
}

/// The most of a pod's answer an analysis HTTP check reads (a longer one
/// fails the check).
pub const MAX_CHECK_BODY: usize = 1 << 20;
/// The most of a Prometheus answer an analysis reads.
pub const MAX_PROMETHEUS_BODY: usize = 16 << 20;

/// An instant query against a Prometheus server: the first sample of a
/// vector, or a scalar.
async fn prometheus(address: &str, query: &str) -> Result<f64, String> {
    let url = format!("{}/api/v1/query", address.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(PROMETHEUS_TIMEOUT)
        .user_agent("berth-analysis/1")
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let resp = client
        .get(&url)
        .query(&[("query", query)])
        .send()
        .await
        .map_err(|e| format!("Prometheus at {address} cannot be reached: {e}"))?;
    let status = resp.status();
    let bytes = crate::probes::body_capped(resp, MAX_PROMETHEUS_BODY)
        .await
        .map_err(|e| format!("Prometheus at {address}: {e}; make the query return fewer series"))?;
    let body: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("Prometheus at {address} answered something not JSON: {e}"))?;
    if !status.is_success() || body["status"] != "success" {
        return Err(format!(
            "Prometheus at {address} refused the query ({}): {}",
            status.as_u16(),
            body["error"].as_str().unwrap_or("no reason given")
        ));
    }
    prometheus_value(&body["data"])
}

/// The number in a query's `data`.
pub fn prometheus_value(data: &serde_json::Value) -> Result<f64, String> {
    let sample = match data["resultType"].as_str() {
        Some("vector") => {
            let first = data["result"].as_array().and_then(|r| r.first());
            let Some(first) = first else {
                return Err("the query returned no samples (an empty vector)".into());
            };
            &first["value"]
        }
        Some("scalar") => &data["result"],
        other => return Err(format!("the query returned a {}, not a vector or scalar", other.unwrap_or("nothing"))),
    };
    let text = sample[1].as_str().ok_or("the query's sample has no value")?;
    let v: f64 = text.parse().map_err(|_| format!("the query's value {text:?} is not a number"))?;
    if v.is_nan() {
        return Err("the query's value is NaN (no data in the window?)".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prometheus_answers_are_read_or_refused_clearly() {
        let v = json!({"resultType": "vector", "result": [{"metric": {}, "value": [1.5, "0.25"]}]});
        assert_eq!(prometheus_value(&v), Ok(0.25));
        assert_eq!(prometheus_value(&json!({"resultType": "scalar", "result": [1.5, "3"]})), Ok(3.0));
        assert!(prometheus_value(&json!({"resultType": "vector", "result": []})).unwrap_err().contains("no samples"));
        assert!(prometheus_value(&json!({"resultType": "scalar", "result": [1, "NaN"]})).unwrap_err().contains("NaN"));
        assert!(prometheus_value(&json!({"resultType": "matrix", "result": []})).unwrap_err().contains("matrix"));
    }

    #[test]
    fn figures_count_failures_and_take_the_99th_percentile_of_answers() {
        let ms = Duration::from_millis;
        let mut o: Vec<(bool, Duration)> = (1..=100).map(|i| (i % 10 != 0, ms(i))).collect();
        assert_eq!(figure_of(&mut o, Measure::SuccessRatio), Some(0.9));
        // 90 answered (1..=99 without the tens): the 99th percentile is the
        // 90th of them, 99 ms.
        assert_eq!(figure_of(&mut o, Measure::LatencyP99Ms), Some(99.0));
        assert_eq!(figure_of(&mut [(false, ms(5))], Measure::LatencyP99Ms), None);
        assert_eq!(figure_of(&mut [], Measure::SuccessRatio), None);
    }

    #[test]
    fn counters_count_the_interval_and_survive_a_reset() {
        assert_eq!(delta((10, 20), (4, 5)), (6, 15));
        assert_eq!(delta((3, 4), (10, 20)), (3, 4));
    }
}

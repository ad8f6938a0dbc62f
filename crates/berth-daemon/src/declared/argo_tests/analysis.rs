//! Canary analyses on the fake host: berth's restarts metric passing or
//! aborting, and a fake Prometheus on 127.0.0.1 answering the
//! reconciler's queries.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_canary_analysis_that_passes_lets_the_rollout_complete() {
    let lab = Lab::new().await;
    let d = lab.declared();
    let analysis = "{templates: [{templateName: no-restarts}]}";
    d.apply(analysed_canary("v1", analysis, NO_RESTARTS)).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    assert_eq!(lab.events_of("AnalysisRunStarted"), 0, "the first revision is not analysed");
    let stable = text(&status(&d)["stableRS"]);

    let started = lab.fakes.clock.now();
    d.apply(analysed_canary("v2", analysis, NO_RESTARTS)).await.unwrap();
    until(&lab, &d, "the first measurement counted", |d| step_run(d)["metrics"][0]["measured"] == 1).await;
    let s = status(&d);
    let canary = text(&s["currentPodHash"]);
    assert_eq!(s["phase"], "Progressing");
    assert_eq!(s["stableRS"], stable);
    assert_eq!(s["currentStepIndex"], 1);
    assert_eq!(s["canary"]["weights"]["canary"]["weight"], 50);
    let run = step_run(&d);
    assert_eq!(run["phase"], "Running");
    assert_eq!(run["revision"], canary);
    assert_eq!(run["metrics"][0]["lastValue"], "0");
    assert_eq!(running_hashes(&d), set(&[&stable, &canary]));
    replay(&lab, &d).await;

    until(&lab, &d, "v2 healthy and alone", |d| {
        let s = status(d);
        s["phase"] == "Healthy" && s["stableRS"] != stable && pods(d).len() == 2 && running_hashes(d).len() == 1
    })
    .await;
    let s = status(&d);
    assert_eq!(s["stableRS"], canary);
    assert_eq!(s["abort"], false);
    let run = step_run(&d);
    assert_eq!(run["phase"], "Successful");
    assert_eq!(run["metrics"][0]["measured"], 2);
    assert_eq!(run["metrics"][0]["successful"], 2);
    assert_eq!(run["metrics"][0]["failed"], 0);
    // Measured 5 s and 10 s in: the rollout waited for both.
    let took = lab.fakes.clock.now() - started;
    assert!(took >= chrono::Duration::seconds(10), "completed {took} after the apply");
    assert_eq!(lab.events_of("AnalysisRunStarted"), 1);
    assert_eq!(lab.events_of("AnalysisRunSuccessful"), 1);
    assert_eq!(lab.events_of("AnalysisRunFailed"), 0);
    assert_eq!(lab.events_of("RolloutAborted"), 0);
    assert_eq!(lab.events_of("RolloutCompleted"), 1);
    assert_eq!(served_by(&lab, &d, "app"), [canary.as_str(), canary.as_str()]);
    replay(&lab, &d).await;
}

#[tokio::test(start_paused = true)]
async fn a_canary_whose_pods_crash_during_its_analysis_is_aborted_back_to_stable() {
    let lab = Lab::new().await;
    let d = lab.declared();
    let analysis = "{templates: [{templateName: no-restarts}]}";
    d.apply(analysed_canary("v1", analysis, NO_RESTARTS)).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    let stable = text(&status(&d)["stableRS"]);
    let stable_pods: BTreeSet<String> = running(&d).into_iter().map(|p| p.uid).collect();

    d.apply(analysed_canary("v2", analysis, NO_RESTARTS)).await.unwrap();
    until(&lab, &d, "the analysis running", |d| step_run(d)["phase"] == "Running").await;
    let canary = text(&status(&d)["currentPodHash"]);
    assert_eq!(served_by(&lab, &d, "app"), sorted(&[&canary, &stable, &stable]), "one canary pod beside stable");
    let split = shares(&lab, &d, "app");
    assert_eq!(split, [(canary.clone(), 50), (stable.clone(), 50)].into_iter().collect(), "half the traffic");

    // The canary's container crashes; it is restarted, and counted.
    let pod = running(&d).into_iter().find(|p| p.hash == canary).expect("a running canary pod");
    assert!(lab.fakes.shims.exit(pod.containers["web"].id.as_deref().unwrap(), 1, None));
    until(&lab, &d, "aborted, back on stable", |d| {
        let s = status(d);
        s["phase"] == "Degraded" && pods(d).len() == 2 && running_hashes(d) == set(&[&stable])
    })
    .await;
    let s = status(&d);
    assert_eq!(s["abort"], true);
    assert_eq!(s["stableRS"], stable);
    assert_eq!(s["canary"]["weights"]["canary"]["weight"], 0);
    assert_eq!(s["conditions"][0]["reason"], "RolloutAborted");
    let message = text(&s["message"]);
    assert!(message.contains("analysis of step 1 failed") && message.contains("restarts"), "{message}");
    let run = step_run(&d);
    assert_eq!(run["phase"], "Failed");
    assert_eq!(run["metrics"][0]["failed"], 1);
    assert_eq!(run["metrics"][0]["lastValue"], "1");
    assert_eq!(lab.events_of("AnalysisRunFailed"), 1);
    assert_eq!(lab.events_of("RolloutAborted"), 1);
    assert_eq!(lab.events_of("RolloutCompleted"), 0);
    let stable_now: BTreeSet<String> = running(&d).into_iter().map(|p| p.uid).collect();
    assert_eq!(stable_now, stable_pods, "the stable pods were never touched");
    assert_eq!(served_by(&lab, &d, "app"), [stable.as_str(), stable.as_str()]);
    let e = promote(&d).await.unwrap_err();
    assert!(e.contains("aborted"), "{e}");
    replay(&lab, &d).await;
}

/// A Prometheus on 127.0.0.1 answering every instant query with `value`
/// (a vector of one sample), recording the queries asked. It lives as long
/// as the test's runtime.
struct FakePrometheus {
    url: String,
    value: Arc<Mutex<String>>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl FakePrometheus {
    async fn start(value: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let value = Arc::new(Mutex::new(value.to_string()));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (v, q) = (Arc::clone(&value), Arc::clone(&queries));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 << 10 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string();
                let query = line.split_whitespace().nth(1).and_then(|t| t.split_once("query=")).map(|(_, q)| q);
                q.lock().unwrap().push(percent_decode(query.unwrap_or_default()));
                let value = v.lock().unwrap().clone();
                let body = serde_json::json!({
                    "status": "success",
                    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1_767_225_600, value]}]},
                })
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        Self { url, value, queries }
    }

    fn answer(&self, value: &str) {
        *self.value.lock().unwrap() = value.to_string();
    }

    fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

/// A URL query value (up to the next `&`), decoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.split('&').next().unwrap_or_default().as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The error rate of Service `{{args.service}}`, from the Prometheus at
/// `{{args.prometheus}}`: below 1 % passes, 5 % or more fails.
const ERROR_RATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  args: [{name: prometheus}, {name: service}]
  metrics:
    - name: error-rate
      successCondition: result < 0.01
      failureCondition: result >= 0.05
      provider:
        prometheus:
          address: "{{args.prometheus}}"
          query: 'sum(rate(http_errors_total{service="{{args.service}}"}[1m]))'
"#;

#[tokio::test(start_paused = true)]
async fn a_prometheus_analysis_promotes_a_good_canary_and_aborts_a_bad_one() {
    let prometheus = FakePrometheus::start("0.001").await;
    let lab = Lab::new().await;
    let d = lab.declared();
    let analysis = format!(
        "{{templates: [{{templateName: error-rate}}], args: [{{name: prometheus, value: '{}'}}, {{name: service, value: app}}]}}",
        prometheus.url
    );
    d.apply(analysed_canary("v1", &analysis, ERROR_RATE)).await.unwrap();
    until(&lab, &d, "v1 healthy", |d| status(d)["phase"] == "Healthy" && running(d).len() == 2).await;
    let v1 = text(&status(&d)["stableRS"]);

    // 0.1 % errors: v2 passes and completes.
    d.apply(analysed_canary("v2", &analysis, ERROR_RATE)).await.unwrap();
    until(&lab, &d, "v2 healthy", |d| {
        let s = status(d);
        s["phase"] == "Healthy" && s["stableRS"] != v1 && pods(d).len() == 2 && running_hashes(d).len() == 1
    })
    .await;
    let v2 = text(&status(&d)["stableRS"]);
    let run = step_run(&d);
    assert_eq!(run["phase"], "Successful");
    assert_eq!(run["metrics"][0]["lastValue"], "0.001");
    assert_eq!(prometheus.queries(), [r#"sum(rate(http_errors_total{service="app"}[1m]))"#], "the query, rendered");
    assert_eq!(lab.events_of("AnalysisRunSuccessful"), 1);

    // 20 % errors: v3 fails its analysis and is aborted back to v2.
    prometheus.answer("0.2");
    d.apply(analysed_canary("v3", &analysis, ERROR_RATE)).await.unwrap();
    until(&lab, &d, "v3 aborted, back on v2", |d| {
        status(d)["phase"] == "Degraded" && pods(d).len() == 2 && running_hashes(d) == set(&[&v2])
    })
    .await;
    let s = status(&d);
    assert_eq!(s["stableRS"], v2);
    assert_eq!(s["abort"], true);
    assert_eq!(s["canary"]["weights"]["canary"]["weight"], 0);
    let message = text(&s["message"]);
    assert!(message.contains("analysis of step 1 failed") && message.contains("error-rate"), "{message}");
    let run = step_run(&d);
    assert_eq!(run["phase"], "Failed");
    assert_eq!(run["metrics"][0]["lastValue"], "0.200");
    assert_eq!(prometheus.queries().len(), 2, "one measurement per run (no interval)");
    assert_eq!(lab.events_of("AnalysisRunFailed"), 1);
    assert_eq!(lab.events_of("RolloutAborted"), 1);
    assert_eq!(served_by(&lab, &d, "app"), [v2.as_str(), v2.as_str()]);
    replay(&lab, &d).await;
    assert_eq!(prometheus.queries().len(), 2, "a replayed pass measures nothing again");
}

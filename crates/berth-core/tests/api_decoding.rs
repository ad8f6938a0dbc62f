//! The API's request bodies decoded from hostile JSON, as the daemon
//! decodes them (`serde_json::from_slice` on the bytes it received):
//! arbitrary bytes and arbitrary JSON never panic or overflow the stack,
//! and an object with a field the type does not have is always refused,
//! wherever the field sits among valid ones.
//!
//! Each property runs a few hundred cases in every `cargo test`; the
//! ignored `fuzz_*` tests keep drawing new cases for `BERTH_FUZZ_SECONDS`
//! (default 10) and are run by `scripts/fuzz.sh`.

use berth_core::api::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One request type: its name and a decoder that reports the error text.
/// A tagged enum is one `Request` per variant, with the tag field
/// (`"action": "undo"`) always first in its objects.
struct Request {
    name: &'static str,
    tag: Option<(&'static str, &'static str)>,
    decode: fn(&[u8]) -> Result<(), String>,
}

impl Request {
    /// The object of `entries`, after the tag if the type has one.
    fn object(&self, entries: &[(String, Value)]) -> String {
        let mut all: Vec<(String, Value)> =
            self.tag.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
        all.extend(entries.iter().cloned());
        render(&all)
    }
}

fn decoder<T: DeserializeOwned>(bytes: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<T>(bytes).map(drop).map_err(|e| e.to_string())
}

macro_rules! requests {
    ($($t:ty),* $(,)?) => {
        vec![$(Request { name: stringify!($t), tag: None, decode: decoder::<$t> }),*]
    };
}

/// Every type the daemon decodes a request body into.
fn requests() -> Vec<Request> {
    let mut all = requests![
        PullRequest,
        PushRequest,
        ImportRequest,
        ExportRequest,
        TagRequest,
        LoginRequest,
        LogoutRequest,
        ContainerCreateRequest,
        ResourceLimits,
        SecurityOptions,
        ContainerRenameRequest,
        NetworkCreateRequest,
        NetworkConnectRequest,
        VipCreateRequest,
        VipBackendsRequest,
        ExecRequest,
        ExecTtyRequest,
        ManifestFile,
        ApplyRequest,
        DeleteRequest,
        ScaleRequest,
    ];
    for action in ["pause", "resume", "restart", "undo", "promote", "abort"] {
        all.push(Request { name: "RolloutRequest", tag: Some(("action", action)), decode: decoder::<RolloutRequest> });
    }
    all
}

/// The fields a type knows, read from serde's answer to a field it does
/// not: "unknown field `x`, expected one of `a`, `b`" (or "expected `a`").
fn known_fields(r: &Request) -> Vec<String> {
    let probe = r.object(&[("\u{0}probe".to_string(), Value::from(0))]);
    let e = (r.decode)(probe.as_bytes()).unwrap_err();
    assert!(e.contains("unknown field"), "{} accepts unknown fields: {e}", r.name);
    let expected = e.split_once("expected").map_or("", |(_, x)| x);
    expected.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object of `names` (drawn from the type's own fields, so decoding
/// gets past the first key) with arbitrary values, and maybe one field the
/// type does not have at a random place.
/// An object's fields in order, and the unknown one among them (where it
/// was put and its name), if any.
type Fields = (Vec<(String, Value)>, Option<(usize, String)>);

fn object_for(names: Vec<String>) -> impl Strategy<Value = Fields> {
    let entries = prop::collection::vec((prop::sample::select(names.clone()), json_value()), 0..6);
    let unknown = prop::option::of((any::<usize>(), "[a-z_]{1,12}"));
    (entries, unknown).prop_map(move |(mut entries, unknown)| {
        entries.dedup_by(|a, b| a.0 == b.0);
        let unknown = unknown.filter(|(_, n)| !names.contains(n));
        if let Some((at, name)) = &unknown {
            let at = at % (entries.len() + 1);
            entries.insert(at, (name.clone(), Value::Null));
        }
        (entries, unknown)
    })
}

fn render(entries: &[(String, Value)]) -> String {
    let fields: Vec<String> = entries.iter().map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v)).collect();
    format!("{{{}}}", fields.join(","))
}

fn any_bytes_decode(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    for r in requests() {
        let _ = (r.decode)(&bytes);
    }
    Ok(())
}

fn any_json_decodes(v: Value) -> Result<(), TestCaseError> {
    let text = v.to_string();
    for r in requests() {
        let _ = (r.decode)(text.as_bytes());
    }
    Ok(())
}

fn unknown_fields_refused(
    which: usize,
    entries: Vec<(String, Value)>,
    unknown: Option<(usize, String)>,
) -> Result<(), TestCaseError> {
    let requests = requests();
    let r = &requests[which % requests.len()];
    let text = r.object(&entries);
    let result = (r.decode)(text.as_bytes());
    if let Some((_, name)) = unknown {
        prop_assert!(result.is_err(), "{} took the unknown field {:?}: {}", r.name, name, text);
    }
    Ok(())
}

/// Which request type, and an object for it.
type TypedObject = (usize, Vec<(String, Value)>, Option<(usize, String)>);

fn typed_objects() -> impl Strategy<Value = TypedObject> {
    let count = requests().len();
    (0..count).prop_flat_map(|which| {
        let fields = known_fields(&requests()[which]);
        let fields = if fields.is_empty() { vec!["x".to_string()] } else { fields };
        object_for(fields).prop_map(move |(e, u)| (which, e, u))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn requests_decode_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        any_bytes_decode(bytes)?;
    }

    #[test]
    fn requests_decode_any_json(v in json_value()) {
        any_json_decodes(v)?;
    }

    #[test]
    fn requests_refuse_unknown_fields_anywhere((which, entries, unknown) in typed_objects()) {
        unknown_fields_refused(which, entries, unknown)?;
    }
}

#[test]
fn every_request_type_refuses_unknown_fields() {
    for r in requests() {
        let fields = known_fields(&r);
        // A variant of a tagged enum may take no field but its tag.
        assert!(!fields.is_empty() || r.tag.is_some(), "{}", r.name);
        let e = (r.decode)(r.object(&[("plaform".to_string(), Value::from(1))]).as_bytes()).unwrap_err();
        assert!(e.contains("unknown field `plaform`"), "{}: {e}", r.name);
    }
}

#[test]
fn deep_json_is_refused_not_overflowed() {
    for open in ["[", "{\"a\":"] {
        let text = open.repeat(100_000);
        for r in requests() {
            let e = (r.decode)(text.as_bytes()).unwrap_err();
            assert!(!e.is_empty(), "{}", r.name);
        }
    }
    let nested = "{\"files\":".repeat(100_000);
    let e = (requests().iter().find(|r| r.name == "ApplyRequest").unwrap().decode)(nested.as_bytes()).unwrap_err();
    assert!(e.contains("recursion limit exceeded") || e.contains("invalid type"), "{e}");
}

/// Draws cases for `BERTH_FUZZ_SECONDS` seconds in batches with fresh
/// seeds; a failure panics with the shrunk input and its seed.
fn fuzz<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let seconds: u64 = std::env::var("BERTH_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut batches = 0u64;
    while std::time::Instant::now() < deadline {
        let mut seed = [0u8; 32];
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
        seed[16..24].copy_from_slice(&batches.to_le_bytes());
        let config = Config { cases: 256, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        match runner.run(&strategy, &test) {
            Ok(()) => batches += 1,
            Err(TestError::Fail(why, input)) => panic!("{why}\ninput: {input:?}\nseed: {seed:?}"),
            Err(e) => panic!("{e}"),
        }
    }
    eprintln!("{batches} batches of 256 cases in {seconds} s");
}

#[test]
#[ignore = "long-running; scripts/fuzz.sh"]
fn fuzz_api_bytes() {
    fuzz(prop::collection::vec(any::<u8>(), 0..4096), any_bytes_decode);
}

#[test]
#[ignore = "long-running; scripts/fuzz.sh"]
fn fuzz_api_json() {
    fuzz(json_value(), any_json_decodes);
}

#[test]
#[ignore = "long-running; scripts/fuzz.sh"]
fn fuzz_api_unknown_fields() {
    fuzz(typed_objects(), |(w, e, u)| unknown_fields_refused(w, e, u));
}

//! Property tests of the readers of untrusted text: the YAML reader (with
//! the whole manifest pipeline behind it) and the label-selector parser.
//! Whatever the input, they return a value or an error: no panic, no stack
//! overflow, and nothing built past [`Limits`].
//!
//! Each property runs twice: a few hundred cases in every `cargo test`,
//! and as an ignored `fuzz_*` test that keeps drawing new cases for
//! `BERTH_FUZZ_SECONDS` (default 10), which `scripts/fuzz.sh` runs in a
//! release build outside CI.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::selector::Selector;
use crate::yaml::{parse_stream_with, Limits, Node, Value, YamlDocument};

/// Small limits, so a few generated lines can cross each of them.
const SMALL: Limits = Limits { nodes: 400, bytes: 4_000, depth: 12 };

/// Draws cases from `strategy` for `BERTH_FUZZ_SECONDS` seconds, in
/// batches with fresh seeds; a failure panics with the shrunk input and
/// the seed that found it.
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

// ---- inputs ----

/// Fragments of YAML syntax, joined at random: mostly invalid, often deep
/// or alias-heavy, sometimes a manifest.
fn yaml_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "- ",
        "[",
        "]",
        "{",
        "}",
        ": ",
        ", ",
        "\n",
        "  ",
        "    ",
        "---\n",
        "...\n",
        "&a ",
        "&b ",
        "*a",
        "*b",
        "<<: ",
        "? ",
        "|\n",
        ">-\n",
        "#c\n",
        "'q'",
        "\"d\\x41\"",
        "key",
        "x",
        "1",
        "0644",
        "yes",
        "~",
        ".inf",
        "!!int ",
        "!!str ",
        "!t ",
        "%YAML 1.2\n",
        "\t",
        "apiVersion: v1\n",
        "kind: Secret\n",
        "kind: ConfigMap\n",
        "kind: List\n",
        "items:\n",
        "metadata: {name: a}\n",
        "data:\n",
        "stringData:\n",
        "apps/v1",
        "Deployment",
        "spec:\n",
        "containers:\n",
        "name: c\n",
        "image: busybox\n",
        "\u{feff}",
        "é",
        "\r\n",
    ]);
    prop::collection::vec(token, 0..60).prop_map(|t| t.concat())
}

/// A YAML tree with anchors and aliases, written in flow style.
#[derive(Debug, Clone)]
enum Tree {
    Scalar(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
    Anchor(u8, Box<Tree>),
    Alias(u8),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        "[a-z0-9 ]{0,12}".prop_map(Tree::Scalar),
        Just(Tree::Scalar("x".repeat(300))),
        (0u8..3).prop_map(Tree::Alias),
    ];
    leaf.prop_recursive(16, 256, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Tree::Seq),
            prop::collection::vec((prop::sample::select(vec!["a", "b", "<<", "k"]), inner.clone()), 0..5)
                .prop_map(|e| Tree::Map(e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ((0u8..3), inner).prop_map(|(n, t)| Tree::Anchor(n, Box::new(t))),
        ]
    })
}

fn render(t: &Tree, out: &mut String) {
    match t {
        Tree::Scalar(s) => out.push_str(&format!("{s:?}")),
        Tree::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(item, out);
            }
            out.push(']');
        }
        Tree::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                render(v, out);
            }
            out.push('}');
        }
        Tree::Anchor(n, t) => {
            out.push_str(&format!("&n{n} "));
            render(t, out);
        }
        Tree::Alias(n) => out.push_str(&format!("*n{n}")),
    }
}

fn tree_text() -> impl Strategy<Value = String> {
    prop::collection::vec(tree(), 1..4).prop_map(|trees| {
        let mut out = String::new();
        for t in &trees {
            out.push_str("---\n");
            render(t, &mut out);
            out.push('\n');
        }
        out
    })
}

/// Billion laughs: `levels` anchors, each aliasing the one before `fan`
/// times, and a last line that uses the top one.
fn laughs() -> impl Strategy<Value = String> {
    (1usize..8, 2usize..12, 1usize..200).prop_map(|(levels, fan, len)| {
        let mut text = format!("l0: &l0 {:?}\n", "x".repeat(len));
        for i in 1..=levels {
            let prev = format!("*l{}", i - 1);
            text.push_str(&format!("l{i}: &l{i} [{}]\n", vec![prev; fan].join(", ")));
        }
        text
    })
}

/// Nesting `depth` deep, in block or flow style.
fn deep() -> impl Strategy<Value = (usize, String)> {
    (0usize..40, 0usize..3).prop_map(|(depth, style)| {
        let text = match style {
            0 => "- ".repeat(depth) + "a\n",
            1 => "[".repeat(depth) + "a" + &"]".repeat(depth),
            _ => "{k: ".repeat(depth) + "a" + &"}".repeat(depth),
        };
        (depth, text)
    })
}

// ---- properties ----

/// What a read stream holds: (values with keys, bytes of text, depth).
fn measure(docs: &[YamlDocument]) -> (usize, usize, usize) {
    fn walk(n: &Node, depth: usize, acc: &mut (usize, usize, usize)) {
        acc.0 += 1;
        acc.2 = acc.2.max(depth);
        match &n.value {
            Value::Str(s) => acc.1 += s.len(),
            Value::Seq(items) => items.iter().for_each(|i| walk(i, depth + 1, acc)),
            Value::Map(entries) => {
                for (k, v) in entries {
                    acc.0 += 1;
                    acc.1 += k.len();
                    walk(v, depth + 1, acc);
                }
            }
            _ => acc.1 += n.plain.as_ref().map_or(0, String::len),
        }
    }
    let mut acc = (0, 0, 0);
    for d in docs {
        walk(&d.root, 0, &mut acc);
    }
    acc
}

/// The reader returns documents within `limits`, or an error that names a
/// line; the whole manifest pipeline behind it never panics either.
fn read_within(text: &str, limits: Limits) -> Result<(), TestCaseError> {
    match parse_stream_with(text, limits) {
        Ok(docs) => {
            let (nodes, bytes, depth) = measure(&docs);
            prop_assert!(nodes <= limits.nodes, "{nodes} values");
            prop_assert!(bytes <= limits.bytes, "{bytes} bytes");
            prop_assert!(depth <= limits.depth, "depth {depth}");
            for d in &docs {
                let _ = d.root.to_json();
            }
        }
        Err(e) => prop_assert!(!e.reason.is_empty(), "{e:?}"),
    }
    let _ = crate::load(text);
    Ok(())
}

fn bytes_read(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    read_within(&String::from_utf8_lossy(&bytes), SMALL)?;
    read_within(&String::from_utf8_lossy(&bytes), Limits::BERTH)
}

fn laughs_bounded(text: String) -> Result<(), TestCaseError> {
    read_within(&text, SMALL)?;
    if let Err(e) = parse_stream_with(&text, SMALL) {
        prop_assert!(e.reason.contains("after expanding aliases"), "{e}");
    }
    Ok(())
}

fn depth_bounded((depth, text): (usize, String)) -> Result<(), TestCaseError> {
    let result = parse_stream_with(&text, SMALL);
    if depth <= SMALL.depth {
        prop_assert!(result.is_ok(), "depth {depth}: {result:?}");
    } else {
        let e = result.unwrap_err();
        prop_assert!(e.reason.contains("nested more than 12 levels"), "{e}");
    }
    Ok(())
}

fn selector_tokens() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "a",
        "app",
        "tier",
        "x.io/name",
        "-",
        "_",
        ".",
        "=",
        "==",
        "!=",
        "!",
        " in ",
        " notin ",
        "(",
        ")",
        ",",
        " ",
        "<",
        ">",
        "web",
        "",
        "é",
        "\u{0}",
        "a/b/c",
        "in",
        "notin",
    ]);
    prop::collection::vec(token, 0..16).prop_map(|t| t.concat())
}

/// The parser never panics, and what it accepts prints to its canonical
/// form, which reads back as the same selector.
fn selector_round_trips(input: String) -> Result<(), TestCaseError> {
    if let Ok(s) = Selector::parse(&input) {
        let canonical = s.to_string();
        let back = Selector::parse(&canonical);
        prop_assert_eq!(back.as_ref(), Ok(&s), "{:?} printed as {:?}", input, canonical);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn yaml_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        bytes_read(bytes)?;
    }

    #[test]
    fn yaml_reader_takes_any_soup(text in yaml_soup()) {
        read_within(&text, SMALL)?;
        read_within(&text, Limits::BERTH)?;
    }

    #[test]
    fn yaml_reader_bounds_anchored_trees(text in tree_text()) {
        read_within(&text, SMALL)?;
    }

    #[test]
    fn yaml_reader_bounds_alias_expansion(text in laughs()) {
        laughs_bounded(text)?;
    }

    #[test]
    fn yaml_reader_bounds_depth(case in deep()) {
        depth_bounded(case)?;
    }

    #[test]
    fn selector_parser_takes_any_text(input in ".{0,40}") {
        selector_round_trips(input)?;
    }

    #[test]
    fn selector_parser_takes_any_token_soup(input in selector_tokens()) {
        selector_round_trips(input)?;
    }
}

#[test]
#[ignore = "long-running; scripts/fuzz.sh"]
fn fuzz_yaml_bytes() {
    fuzz(prop::collection::vec(any::<u8>(), 0..4096), bytes_read);
}

#[test]
#[ignore = "long-running; scripts/fuzz.sh"]
fn fuzz_yaml_soup() {
    fuzz(yaml_soup(), |t| read_within(&t, SMALL).and_then(|()| read_within(&t, Limits::BERTH)));
}

#[test]
#[ignore = "long-running; scripts/fuzz.sh"]
fn fuzz_yaml_trees() {
    fuzz(tree_text(), |t| read_within(&t, SMALL));
}

#[test]
#[ignore = "long-running; scripts/fuzz.sh"]
fn fuzz_yaml_laughs_and_depth() {
    fuzz((laughs(), deep()), |(l, d)| laughs_bounded(l).and_then(|()| depth_bounded(d)));
}

#[test]
#[ignore = "long-running; scripts/fuzz.sh"]
fn fuzz_selector() {
    fuzz(prop_oneof![".{0,80}", selector_tokens()], selector_round_trips);
}

use super::*;

fn one(text: &str) -> Node {
    let docs = parse_stream(text).unwrap();
    assert_eq!(docs.len(), 1, "{docs:?}");
    docs.into_iter().next().unwrap().root
}

fn json(text: &str) -> serde_json::Value {
    one(text).to_json()
}

#[test]
fn skips_empty_documents_and_counts_all() {
    let docs = parse_stream("---\n---\n# only a comment\n---\na: 1\n---\n\n---\nb: 2\n...\n").unwrap();
    let indexes: Vec<usize> = docs.iter().map(|d| d.index).collect();
    assert_eq!(indexes, vec![3, 5]);
    assert_eq!(docs[1].root.line, 9);
    assert!(parse_stream("").unwrap().is_empty());
    assert!(parse_stream("# nothing\n").unwrap().is_empty());
}

#[test]
fn syntax_errors_carry_document_line_and_column() {
    let err = parse_stream("a: 1\n---\nb: [1, 2\nc: 3\n").unwrap_err();
    assert_eq!(err.document, 2);
    assert!(err.line >= 3, "{err}");
    assert!(err.to_string().starts_with("document 2: invalid YAML at line"), "{err}");
    let err = parse_stream("a: 1\n  b: 2\n").unwrap_err();
    assert_eq!((err.document, err.line), (1, 2), "{err}");
}

#[test]
fn duplicate_keys_are_rejected() {
    let err = parse_stream("a: 1\nb: 2\na: 3\n").unwrap_err();
    assert_eq!(err.line, 3);
    assert_eq!(err.column, 1);
    assert!(err.reason.contains("duplicate key \"a\" (first given on line 1)"), "{err}");
}

#[test]
fn scalars_resolve_like_go_yaml_v2() {
    let v = json(
        "a: yes\nb: Off\nc: 0644\nd: 0x1F\ne: 1_000\nf: 1.5\ng: 1e3\nh: ~\ni: \"yes\"\nj: '0644'\nk: 08\nl: -12\nm: .5\nn: 1.2.3\no: 2024-01-01\np: !!str 42\nq: !!float 1\nr: +7\n",
    );
    assert_eq!(v["a"], true);
    assert_eq!(v["b"], false);
    assert_eq!(v["c"], 420);
    assert_eq!(v["d"], 31);
    assert_eq!(v["e"], 1000);
    assert_eq!(v["f"], 1.5);
    assert_eq!(v["g"], 1000.0);
    assert!(v["h"].is_null());
    assert_eq!(v["i"], "yes");
    assert_eq!(v["j"], "0644");
    assert_eq!(v["k"], 8.0);
    assert_eq!(v["l"], -12);
    assert_eq!(v["m"], 0.5);
    assert_eq!(v["n"], "1.2.3");
    assert_eq!(v["o"], "2024-01-01");
    assert_eq!(v["p"], "42");
    assert_eq!(v["q"], 1.0);
    assert_eq!(v["r"], 7);
    assert_eq!(one("a: yes\n").get("a").unwrap().plain.as_deref(), Some("yes"));
}

#[test]
fn keys_keep_their_text() {
    let v = json("on: 1\n1: 2\ntrue: 3\n");
    assert_eq!(v["on"], 1);
    assert_eq!(v["1"], 2);
    assert_eq!(v["true"], 3);
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let v = json("base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\nmany:\n  <<: [{p: 1}, {p: 2, q: 2}]\n");
    assert_eq!(v["use"], serde_json::json!({"x": 1, "y": 2}));
    assert_eq!(v["merged"], serde_json::json!({"x": 1, "y": 3}));
    assert_eq!(v["many"], serde_json::json!({"p": 1, "q": 2}));
    let err = parse_stream("a:\n  <<: 5\n").unwrap_err();
    assert!(err.reason.contains("merge key"), "{err}");
}

#[test]
fn alias_bombs_are_bounded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        let prev = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    let err = parse_stream(&text).unwrap_err();
    assert!(err.reason.contains("after expanding aliases"), "{err}");
}

#[test]
fn unsupported_tags_and_infinities() {
    assert!(parse_stream("a: !custom x\n").unwrap_err().reason.contains("not supported"));
    assert!(parse_stream("a: .inf\n").unwrap_err().reason.contains("quote it"));
    assert!(parse_stream("a: !!int abc\n").unwrap_err().reason.contains("not a valid !!int"));
    assert!(parse_stream("? [a]\n: 1\n").unwrap_err().reason.contains("mapping key"));
}

#[test]
fn locate_finds_the_deepest_existing_node() {
    let root = one("spec:\n  containers:\n    - name: a\n      image: x\n");
    let p = FieldPath::of(&["spec", "containers"]).index(0).field("image");
    assert_eq!(root.locate(&p).line, 4);
    let missing = FieldPath::of(&["spec", "containers"]).index(0).field("nope");
    assert_eq!(root.locate(&missing).line, 3);
}

const SMALL: Limits = Limits { nodes: 1000, bytes: 10_000, depth: 8 };

#[test]
fn a_large_anchored_scalar_is_charged_per_alias_before_it_is_copied() {
    // The billion laughs of issue 12: 1 MiB aliased 200,000 times.
    let mut text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: laughs}}\nbig: &a \"{}\"\ndata: [",
        "x".repeat(1 << 20)
    );
    text.push_str(&"*a, ".repeat(200_000));
    text.push_str("]\n");
    let started = std::time::Instant::now();
    let err = parse_stream(&text).unwrap_err();
    assert!(err.reason.contains("more than 32 MiB of text after expanding aliases"), "{err}");
    assert_eq!(err.line, 5, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    // Within the bound, aliases still work.
    // Keys a and b, xxxx, its copy kept for aliases, and two aliases of it.
    let needs = 1 + 1 + 4 + 4 + 4 + 4;
    let ok = parse_stream_with("a: &a xxxx\nb: [*a, *a]\n", Limits { bytes: needs, ..SMALL });
    assert!(ok.is_ok(), "{ok:?}");
    let over = parse_stream_with("a: &a xxxx\nb: [*a, *a]\n", Limits { bytes: needs - 1, ..SMALL });
    assert!(over.unwrap_err().reason.contains("more than 17 bytes of text"));
}

#[test]
fn nested_anchors_are_charged_for_the_copies_they_keep() {
    // Each anchor keeps a copy of everything inside it: 8 levels of anchors
    // around one 1,000-byte scalar keep 9 copies of it.
    let mut text = String::new();
    for i in 0..8 {
        text.push_str(&format!("&a{i} ["));
    }
    text.push_str(&"x".repeat(1000));
    text.push_str(&"]".repeat(8));
    let err = parse_stream_with(&text, Limits { bytes: 8_000, depth: 20, ..SMALL }).unwrap_err();
    assert!(err.reason.contains("of text after expanding aliases"), "{err}");
    assert!(parse_stream_with(&text, Limits { bytes: 9_000, depth: 20, ..SMALL }).is_ok());
}

#[test]
fn deep_nesting_is_refused_before_it_is_built() {
    for text in ["- ".repeat(200_000) + "a\n", "[".repeat(200_000), "{a: ".repeat(200_000)] {
        let err = parse_stream(&text).unwrap_err();
        assert!(err.reason.contains("nested more than 100 levels deep"), "{err}");
    }
    let at_limit = "[".repeat(100) + &"]".repeat(100);
    let docs = parse_stream(&at_limit).unwrap();
    assert!(docs[0].root.to_json().is_array());
    let over = "[".repeat(101) + &"]".repeat(101);
    let err = parse_stream(&over).unwrap_err();
    assert_eq!((err.line, err.column), (1, 101), "{err}");
}

#[test]
fn an_alias_cannot_nest_past_the_limit() {
    // 4 levels anchored, aliased inside 5 (the root mapping and 4 lists).
    let text = "a: &deep [[[[x]]]]\nb: [[[[*deep]]]]\n";
    let err = parse_stream_with(text, Limits { depth: 8, ..SMALL }).unwrap_err();
    assert!(err.reason.contains("nested more than 8 levels"), "{err}");
    assert_eq!(err.line, 2);
    assert!(parse_stream_with(text, Limits { depth: 9, ..SMALL }).is_ok());
}

#[test]
fn errors_do_not_repeat_tagged_values() {
    let err = parse_stream("password: !!int hunter2hunter2\n").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert_eq!(quoted_excerpt("short"), "\"short\"");
    assert_eq!(quoted_excerpt(&"k".repeat(100)), format!("{:?}… (100 bytes)", "k".repeat(40)));
}

#[test]
fn a_mapping_of_many_keys_is_read_in_linear_time() {
    // Checking each key against all before it took minutes for 500,000.
    let mut text = String::new();
    for i in 0..99_000 {
        text.push_str(&format!("k{i}: v\n"));
    }
    let started = std::time::Instant::now();
    let docs = parse_stream(&text).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(matches!(&docs[0].root.value, Value::Map(e) if e.len() == 99_000));
    let mut merged = String::from("base: &b {");
    for i in 0..20_000 {
        merged.push_str(&format!("m{i}: 1, "));
    }
    merged.push_str("}\nuse:\n  <<: *b\n");
    for i in 0..20_000 {
        merged.push_str(&format!("  u{i}: 2\n"));
    }
    let started = std::time::Instant::now();
    let docs = parse_stream(&merged).unwrap();
    assert!(matches!(&docs[0].root.get("use").unwrap().value, Value::Map(e) if e.len() == 40_000));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

//! Golden files: the compiled batch for typical desired states, byte for
//! byte. `BERTH_UPDATE_GOLDEN=1 cargo test -p berth-net --test golden`
//! rewrites them; review the diff before keeping it.
//!
//! Privileged part: every golden file is accepted by `nft -c` and, applied
//! for real inside a namespace of its own (twice, to show it is idempotent),
//! lists back with the shape Berth expects.

mod common;

use std::path::{Path, PathBuf};

use berth_core::net::{Protocol, Weights};
use berth_net::{compile, is_intact, Desired, NftCli, Nftables, Ruleset, Vip};
use common::{desired, network, port, require_root, vip, Netns};

fn cases() -> Vec<(&'static str, Desired)> {
    let n1 = || network("n1", "br-n1", "10.88.0.0/24", false);
    let udp_dns = Vip {
        name: "dns".into(),
        ip: "10.96.0.53".parse().unwrap(),
        port: 53,
        protocol: Protocol::Udp,
        backends: Weights::parse(["10.88.0.5:53=100"]).unwrap(),
        node_port: None,
    };
    vec![
        ("empty", desired("berth", vec![], vec![], vec![])),
        (
            "network_and_port",
            desired(
                "berth",
                vec![n1()],
                vec![
                    port("web", None, 8080, "n1", "10.88.0.2", 80),
                    port("api", Some("127.0.0.1"), 9090, "n1", "10.88.0.3", 9000),
                ],
                vec![],
            ),
        ),
        ("internal", desired("berth", vec![n1(), network("db", "br-db", "10.88.1.0/24", true)], vec![], vec![])),
        (
            "vip_50_50",
            desired(
                "berth",
                vec![],
                vec![],
                vec![vip("web", "10.96.0.10", 80, &["10.88.0.2:80=50", "10.88.0.3:80=50"])],
            ),
        ),
        (
            "vip_1_99",
            desired(
                "berth",
                vec![],
                vec![],
                vec![vip("web", "10.96.0.10", 80, &["10.88.0.2:80=1", "10.88.0.3:80=99"])],
            ),
        ),
        (
            "vip_weight_zero",
            desired(
                "berth",
                vec![],
                vec![],
                vec![vip("web", "10.96.0.10", 80, &["10.88.0.2:80=0", "10.88.0.3:80=100"])],
            ),
        ),
        ("vip_no_backends", desired("berth", vec![], vec![], vec![vip("web", "10.96.0.10", 80, &[])])),
        (
            "vip_node_port",
            desired(
                "berth",
                vec![n1()],
                vec![],
                vec![Vip {
                    node_port: Some(30080),
                    ..vip("web", "10.96.0.10", 80, &["10.88.0.2:80=50", "10.88.0.3:80=50"])
                }],
            ),
        ),
        (
            "hairpin",
            desired(
                "berth",
                vec![n1()],
                vec![port("web-1", None, 8080, "n1", "10.88.0.2", 80)],
                vec![vip("web", "10.96.0.10", 80, &["10.88.0.2:80=60", "10.88.0.3:80=40"])],
            ),
        ),
        (
            "full",
            desired(
                "bt-test",
                vec![n1(), network("db", "br-db", "10.88.1.0/24", true)],
                vec![port("web-1", None, 8080, "n1", "10.88.0.2", 80)],
                vec![
                    vip("web", "10.96.0.10", 80, &["10.88.0.2:80=1", "10.88.0.3:80=99"]),
                    vip("web/admin", "10.96.0.10", 8443, &["10.88.0.2:8443=50", "10.88.0.3:8443=50"]),
                    vip("db", "10.96.0.20", 5432, &["10.88.1.2:5432=0", "10.88.1.3:5432=100"]),
                    vip("gone", "10.96.0.30", 80, &[]),
                    udp_dns,
                ],
            ),
        ),
    ]
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.json"))
}

#[test]
fn compiled_rulesets_match_golden_files() {
    let update = std::env::var_os("BERTH_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    for (name, d) in cases() {
        let actual = compile(&d).to_json_pretty();
        let path = golden_path(name);
        if update {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("cannot read {}: {e}; run with BERTH_UPDATE_GOLDEN=1 to create it", path.display())
        });
        if expected != actual {
            let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "{} differs from the compiled ruleset from line {} on:\n  expected: {:?}\n  actual:   {:?}\n\
                 rerun with BERTH_UPDATE_GOLDEN=1 if the change is intended, and review the diff",
                path.display(),
                line + 1,
                expected.lines().nth(line),
                actual.lines().nth(line),
            );
        }
        // The file reads back as the same value.
        let parsed: Ruleset = serde_json::from_str(&expected).unwrap();
        assert_eq!(parsed, compile(&d), "{name}");
    }
}

#[test]
fn nft_accepts_every_golden_file_and_lists_it_back() {
    require_root();
    let ns = Netns::new();
    let nft = NftCli::with("nft", Some(ns.path()));
    for (name, _) in cases() {
        let path = golden_path(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .args(["--", "nft", "-c", "-j", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "nft -c rejects {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));

        let ruleset: Ruleset = serde_json::from_str(&text).unwrap();
        let table = ruleset.table().unwrap().to_string();
        nft.check(&ruleset).unwrap_or_else(|e| panic!("{name}: {e}"));
        nft.apply(&ruleset).unwrap_or_else(|e| panic!("{name}: {e}"));
        nft.apply(&ruleset).unwrap_or_else(|e| panic!("{name}, applied again: {e}"));
        let listing = nft.list_table(&table).unwrap().expect("table exists after apply");
        assert!(
            is_intact(&ruleset, Some(&listing)),
            "{name}: listed shape {:?} differs from applied {:?}",
            berth_net::Shape::of_listing(&listing),
            ruleset.shape()
        );
        nft.delete_table(&table).unwrap();
        assert_eq!(nft.list_table(&table).unwrap(), None, "{name}: table gone");
    }
}

/// Weight changes sent as change batches (only the changed chains) leave
/// the kernel's table exactly as applying the whole new table would, and
/// take much less time for nft to load.
#[test]
fn change_batches_leave_the_table_a_rebuild_would() {
    require_root();
    let ns = Netns::new();
    let nft = NftCli::with("nft", Some(ns.path()));
    let n1 = || network("n1", "br-n1", "10.88.0.0/24", false);
    let state = |weights: &[&str]| {
        let others: Vec<Vip> = (0..30)
            .map(|i| vip(&format!("svc{i}"), &format!("10.96.1.{}", i + 1), 80, &["10.88.0.9:80=100"]))
            .collect();
        let mut vips = vec![vip("web", "10.96.0.10", 80, weights)];
        vips.extend(others);
        compile(&desired("berth", vec![n1()], vec![port("p", None, 8080, "n1", "10.88.0.2", 80)], vips))
    };
    let steps: [&[&str]; 5] = [
        &["10.88.0.2:80=100"],
        &["10.88.0.2:80=99", "10.88.0.3:80=1"],
        &["10.88.0.2:80=50", "10.88.0.3:80=50"],
        &["10.88.0.3:80=100"],
        &["10.88.0.2:80=100"],
    ];
    let mut current = state(steps[0]);
    nft.apply(&current).unwrap();
    for step in &steps[1..] {
        let next = state(step);
        let batch = berth_net::ruleset::changes(&current, &next).expect("only chains differ");
        let t = std::time::Instant::now();
        nft.apply_changes(&batch, &next).unwrap_or_else(|e| panic!("{step:?}: {e}"));
        let changed = t.elapsed();
        let t = std::time::Instant::now();
        nft.apply(&next).unwrap();
        let rebuilt = t.elapsed();
        eprintln!("{step:?}: change batch {changed:?}, whole table {rebuilt:?}");
        // Apply the batch to the rebuilt table too: still the same result.
        let listing = nft.list_table("berth").unwrap().expect("table exists");
        assert!(is_intact(&next, Some(&listing)), "{step:?}");
        current = next;
    }
    nft.delete_table("berth").unwrap();
}

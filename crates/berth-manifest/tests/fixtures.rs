//! Fixture manifests: every valid one loads; every invalid one fails with
//! exactly the messages (and lines) in its `.errors` file. Regenerate the
//! `.errors` files with `BERTH_BLESS=1` after a deliberate change, and read
//! the diff.

use std::fs;
use std::path::{Path, PathBuf};

use berth_manifest::{check_references, load};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

#[test]
fn valid_fixtures_load() {
    for file in fixtures("valid") {
        let text = fs::read_to_string(&file).unwrap();
        match load(&text) {
            Err(e) => panic!("{} should load:\n{e}", file.display()),
            // Each valid fixture is whole: what it names, it declares.
            Ok(objects) => {
                let problems = check_references(&objects);
                assert!(problems.is_empty(), "{}: {problems:?}", file.display());
            }
        }
    }
}

#[test]
fn invalid_fixtures_fail_with_exact_messages() {
    let bless = std::env::var_os("BERTH_BLESS").is_some();
    let mut mismatches = Vec::new();
    for file in fixtures("invalid") {
        let text = fs::read_to_string(&file).unwrap();
        let errors = match load(&text) {
            Ok(objects) => panic!("{} should fail, but loaded {} objects", file.display(), objects.len()),
            Err(e) => e,
        };
        let got: String = errors.iter().map(|e| format!("line {}: {e}\n", e.line())).collect();
        let expected_file = file.with_extension("errors");
        if bless {
            fs::write(&expected_file, &got).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_file).unwrap_or_default();
        if got != expected {
            mismatches.push(format!("{}:\n--- expected\n{expected}--- got\n{got}", file.display()));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

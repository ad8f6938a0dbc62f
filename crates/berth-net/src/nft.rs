//! Applying rule sets: the [`Nftables`] trait, the real [`NftCli`] that runs
//! the `nft` binary, and [`FakeNftables`] for tests of the callers.
//!
//! Every change goes through `nft -j -f -` with the whole batch on stdin, so
//! the kernel applies it in one transaction or not at all.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::cmd::{one_line, Invocation};
use crate::ruleset::{Command, Object, Ruleset, Shape};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run {program}: {source}; install nftables (apt-get install nftables) or configure its path")]
    Spawn { program: String, source: std::io::Error },
    #[error("nft failed to {action}: {stderr}")]
    Failed { action: String, stderr: String },
    #[error("nft printed JSON that cannot be read while trying to {action}: {source}")]
    BadOutput { action: String, source: serde_json::Error },
    #[error("invalid table name {0:?}: use 1 to 32 of [a-zA-Z0-9_-], starting with a letter")]
    BadTable(String),
    #[error("the ruleset creates no table; build it with berth_net::compile")]
    NoTable,
}

/// The nftables operations Berth needs, on tables of family `ip` it owns.
pub trait Nftables {
    /// Applies a batch in one transaction. Idempotent for batches from
    /// [`compile`](crate::compile).
    fn apply(&self, ruleset: &Ruleset) -> Result<(), NftError>;
    /// Makes the table `full` describes, given that the kernel holds the one
    /// `changes` was computed from ([`changes`](crate::ruleset::changes)):
    /// sends only `changes`, in one transaction. The default sends `full`.
    fn apply_changes(&self, changes: &Ruleset, full: &Ruleset) -> Result<(), NftError> {
        let _ = changes;
        self.apply(full)
    }
    /// Checks a batch against the kernel without changing anything (`nft -c`).
    fn check(&self, ruleset: &Ruleset) -> Result<(), NftError>;
    /// Deletes table `ip <table>`; a table that does not exist is not an error.
    fn delete_table(&self, table: &str) -> Result<(), NftError>;
    /// The `nft -j list table ip <table>` answer, `None` when there is no
    /// such table.
    fn list_table(&self, table: &str) -> Result<Option<Value>, NftError>;
}

fn valid_table(name: &str) -> Result<(), NftError> {
    let mut chars = name.chars();
    let ok = name.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NftError::BadTable(name.to_string()))
    }
}

/// A batch that removes `ip <table>` whether or not it exists.
fn delete_batch(table: &str) -> Value {
    let t = json!({ "table": { "family": "ip", "name": table } });
    json!({ "nftables": [ { "add": t }, { "delete": t } ] })
}

/// Whether the table as listed still has everything `applied` put there.
/// `listing: None` (no table) is never intact.
pub fn is_intact(applied: &Ruleset, listing: Option<&Value>) -> bool {
    listing.is_some_and(|l| Shape::of_listing(l) == applied.shape())
}

/// Re-applies `applied` when its table was removed, flushed or altered
/// (someone ran `nft flush ruleset`, a firewall reload). Returns whether it
/// re-applied. Call on daemon start and periodically.
pub fn ensure_applied(nft: &dyn Nftables, applied: &Ruleset) -> Result<bool, NftError> {
    let table = applied.table().ok_or(NftError::NoTable)?;
    if is_intact(applied, nft.list_table(table)?.as_ref()) {
        return Ok(false);
    }
    nft.apply(applied)?;
    Ok(true)
}

/// Runs the `nft` binary, optionally inside a network namespace.
#[derive(Debug, Clone)]
pub struct NftCli {
    inv: Invocation,
}

impl NftCli {
    /// `nft` from `PATH`, in the caller's network namespace.
    pub fn new() -> Self {
        Self { inv: Invocation::new("nft", None) }
    }

    /// `program` (path to nft) inside the network namespace at `netns`
    /// (e.g. `/run/netns/NAME`), entered with `nsenter --net`.
    pub fn with(program: impl Into<PathBuf>, netns: Option<PathBuf>) -> Self {
        Self { inv: Invocation::new(program, netns) }
    }

    fn run(&self, action: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, NftError> {
        let out =
            self.inv.run(args, stdin).map_err(|source| NftError::Spawn { program: self.inv.describe(), source })?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(NftError::Failed { action: action.to_string(), stderr: one_line(&out.stderr) })
        }
    }

    fn load(&self, action: &str, json: &str, check: bool) -> Result<(), NftError> {
        let args: &[&str] = if check { &["-c", "-j", "-f", "-"] } else { &["-j", "-f", "-"] };
        self.run(action, args, Some(json.as_bytes())).map(drop)
    }
}

impl Default for NftCli {
    fn default() -> Self {
        Self::new()
    }
}

impl Nftables for NftCli {
    fn apply(&self, ruleset: &Ruleset) -> Result<(), NftError> {
        let table = ruleset.table().ok_or(NftError::NoTable)?;
        self.load(&format!("apply table ip {table}"), &ruleset.to_json(), false)
    }

    fn apply_changes(&self, changes: &Ruleset, full: &Ruleset) -> Result<(), NftError> {
        let table = full.table().ok_or(NftError::NoTable)?;
        self.load(&format!("change table ip {table}"), &changes.to_json(), false)
    }

    fn check(&self, ruleset: &Ruleset) -> Result<(), NftError> {
        let table = ruleset.table().ok_or(NftError::NoTable)?;
        self.load(&format!("check table ip {table}"), &ruleset.to_json(), true)
    }

    fn delete_table(&self, table: &str) -> Result<(), NftError> {
        valid_table(table)?;
        self.load(&format!("delete table ip {table}"), &delete_batch(table).to_string(), false)
    }

    fn list_table(&self, table: &str) -> Result<Option<Value>, NftError> {
        valid_table(table)?;
        let action = format!("list table ip {table}");
        match self.run(&action, &["-j", "list", "table", "ip", table], None) {
            Ok(stdout) => {
                serde_json::from_slice(&stdout).map(Some).map_err(|source| NftError::BadOutput { action, source })
            }
            Err(NftError::Failed { stderr, .. }) if stderr.contains("No such file or directory") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// One call made to a [`FakeNftables`].
#[derive(Debug, Clone, PartialEq)]
pub enum NftCall {
    Apply(Ruleset),
    Check(Ruleset),
    DeleteTable(String),
    ListTable(String),
}

/// Records calls and keeps the last applied batch per table, listing it in
/// the shape `nft -j list table` has. `flush` and `fail_next` simulate an
/// outside flush and an nft failure.
#[derive(Debug, Default)]
pub struct FakeNftables {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<NftCall>,
    tables: Vec<(String, Ruleset)>,
    fail_next: Option<String>,
}

impl FakeNftables {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn calls(&self) -> Vec<NftCall> {
        self.state.lock().expect("fake lock").calls.clone()
    }

    /// The next call fails with this stderr.
    pub fn fail_next(&self, stderr: &str) {
        self.state.lock().expect("fake lock").fail_next = Some(stderr.to_string());
    }

    /// Simulates `nft flush table ip <table>`: chains stay, rules and
    /// elements go.
    pub fn flush(&self, table: &str) {
        let mut st = self.state.lock().expect("fake lock");
        for (_, rs) in st.tables.iter_mut().filter(|(n, _)| n == table) {
            let kept = rs
                .commands()
                .iter()
                .filter(|c| !matches!(c, Command::Add(Object::Rule(_))))
                .cloned()
                .map(|c| match c {
                    Command::Add(Object::Set(mut s)) => {
                        s.elem.clear();
                        Command::Add(Object::Set(s))
                    }
                    Command::Add(Object::Map(mut m)) => {
                        m.elem.clear();
                        Command::Add(Object::Map(m))
                    }
                    other => other,
                })
                .collect();
            *rs = Ruleset::new(kept);
        }
    }

    fn take_failure(&self, st: &mut FakeState, action: String) -> Result<(), NftError> {
        match st.fail_next.take() {
            Some(stderr) => Err(NftError::Failed { action, stderr }),
            None => Ok(()),
        }
    }
}

/// A ruleset written the way `nft -j list` shows objects (no commands).
fn listing_of(rs: &Ruleset) -> Value {
    let items: Vec<Value> = rs
        .commands()
        .iter()
        .filter_map(|c| match c {
            Command::Add(obj) => serde_json::to_value(obj).ok(),
            Command::Delete(_) | Command::Flush(_) => None,
        })
        .collect();
    json!({ "nftables": items })
}

impl Nftables for FakeNftables {
    fn apply(&self, ruleset: &Ruleset) -> Result<(), NftError> {
        let mut st = self.state.lock().expect("fake lock");
        st.calls.push(NftCall::Apply(ruleset.clone()));
        let table = ruleset.table().ok_or(NftError::NoTable)?.to_string();
        self.take_failure(&mut st, format!("apply table ip {table}"))?;
        st.tables.retain(|(n, _)| *n != table);
        st.tables.push((table, ruleset.clone()));
        Ok(())
    }

    fn check(&self, ruleset: &Ruleset) -> Result<(), NftError> {
        let mut st = self.state.lock().expect("fake lock");
        st.calls.push(NftCall::Check(ruleset.clone()));
        self.take_failure(&mut st, "check".into())
    }

    fn delete_table(&self, table: &str) -> Result<(), NftError> {
        let mut st = self.state.lock().expect("fake lock");
        st.calls.push(NftCall::DeleteTable(table.to_string()));
        self.take_failure(&mut st, format!("delete table ip {table}"))?;
        st.tables.retain(|(n, _)| n != table);
        Ok(())
    }

    fn list_table(&self, table: &str) -> Result<Option<Value>, NftError> {
        let mut st = self.state.lock().expect("fake lock");
        st.calls.push(NftCall::ListTable(table.to_string()));
        self.take_failure(&mut st, format!("list table ip {table}"))?;
        Ok(st.tables.iter().find(|(n, _)| n == table).map(|(_, rs)| listing_of(rs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile, Desired};
    use std::os::unix::fs::PermissionsExt;

    fn ruleset() -> Ruleset {
        compile(&Desired::empty("bt-unit").unwrap())
    }

    #[test]
    fn ensure_applied_reapplies_only_when_the_table_is_gone_or_flushed() {
        let nft = FakeNftables::new();
        let rs = ruleset();
        assert!(ensure_applied(&nft, &rs).unwrap(), "missing table is applied");
        assert!(!ensure_applied(&nft, &rs).unwrap(), "intact table is left alone");
        nft.flush("bt-unit");
        assert!(ensure_applied(&nft, &rs).unwrap(), "flushed table is re-applied");
        nft.delete_table("bt-unit").unwrap();
        assert!(ensure_applied(&nft, &rs).unwrap(), "deleted table is re-applied");
        let applies = nft.calls().iter().filter(|c| matches!(c, NftCall::Apply(_))).count();
        assert_eq!(applies, 3);
    }

    #[test]
    fn failures_carry_the_action_and_stderr() {
        let nft = FakeNftables::new();
        nft.fail_next("Error: Could not process rule: Operation not permitted");
        let e = nft.apply(&ruleset()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "nft failed to apply table ip bt-unit: Error: Could not process rule: Operation not permitted"
        );
        assert_eq!(nft.list_table("bt-unit").unwrap(), None, "nothing applied on failure");
    }

    #[test]
    fn delete_is_one_idempotent_batch() {
        assert_eq!(
            delete_batch("bt").to_string(),
            r#"{"nftables":[{"add":{"table":{"family":"ip","name":"bt"}}},{"delete":{"table":{"family":"ip","name":"bt"}}}]}"#
        );
        assert!(matches!(NftCli::new().delete_table("x; flush ruleset"), Err(NftError::BadTable(_))));
        assert!(matches!(NftCli::new().list_table(""), Err(NftError::BadTable(_))));
    }

    /// A stand-in `nft` that prints a canned answer, so the CLI's handling
    /// of exit codes and output is tested without root.
    fn stub(dir: &std::path::Path, name: &str, script: &str) -> NftCli {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        NftCli::with(path, None)
    }

    #[test]
    fn the_cli_maps_nft_answers() {
        let dir = std::env::temp_dir().join(format!("berth-net-stub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // All stubs are written before any runs: a file being written while
        // another is exec'd can fail with "text file busy".
        let missing =
            stub(&dir, "missing", "echo 'Error: No such file or directory' >&2; echo 'list table ip x' >&2; exit 1");
        let listed = stub(&dir, "listed", r#"echo '{"nftables":[{"table":{"family":"ip","name":"x"}}]}'"#);
        let garbage = stub(&dir, "garbage", "echo 'not json'");
        let refuses =
            stub(&dir, "refuses", "cat >/dev/null; printf 'Error: syntax error\\nadd rule\\n    ^^^\\n' >&2; exit 1");

        assert_eq!(missing.list_table("x").unwrap(), None);
        assert!(listed.list_table("x").unwrap().is_some());
        assert!(matches!(garbage.list_table("x"), Err(NftError::BadOutput { .. })));
        let e = refuses.apply(&ruleset()).unwrap_err().to_string();
        assert_eq!(e, "nft failed to apply table ip bt-unit: Error: syntax error | add rule");
        let absent = NftCli::with("/nonexistent/nft", None);
        assert!(absent.apply(&ruleset()).unwrap_err().to_string().starts_with("cannot run /nonexistent/nft"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

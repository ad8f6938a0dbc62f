//! The live records of one network: which names resolve to which IPv4
//! addresses, kept per *owner* (a container, a service) so that a rename, a
//! restart with a new address or a removal is one call.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use thiserror::Error;

use crate::name::{normalize, NameError};

/// What one owner contributes: every name it answers to and its addresses.
///
/// The first name is the one reverse (PTR) lookups of its addresses return,
/// so put the most specific form first (e.g. `web-1.prod` before `web-1`).
/// An entry with names but no addresses makes the names exist with no A
/// records (NOERROR, empty), e.g. a service without ready endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub names: Vec<String>,
    pub addrs: Vec<Ipv4Addr>,
}

impl Entry {
    pub fn new<N, S, A>(names: N, addrs: A) -> Self
    where
        N: IntoIterator<Item = S>,
        S: Into<String>,
        A: IntoIterator<Item = Ipv4Addr>,
    {
        Self { names: names.into_iter().map(Into::into).collect(), addrs: addrs.into_iter().collect() }
    }
}

/// A change the table refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordsError {
    #[error(
        "DNS name {name:?} of {owner:?} is not valid: {reason}; container names, aliases \
         and service names must be dot-separated labels of letters, digits, '-' and '_' \
         (at most 63 characters each)"
    )]
    InvalidName { owner: String, name: String, reason: NameError },
    #[error("a DNS records owner needs a non-empty key (e.g. the container id)")]
    EmptyOwner,
}

/// A shared handle on one network's records. Cloning is cheap and every
/// clone sees the same table: the daemon keeps one, the server another, and
/// a change is visible to the very next query.
///
/// Every method takes the lock once, so each change is atomic: a query sees
/// the table before or after it, never half of it.
#[derive(Debug, Clone, Default)]
pub struct Records {
    table: Arc<RwLock<Table>>,
}

impl Records {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets everything `owner` answers to, replacing what it had (a rename
    /// or new address is just another `upsert`). Names are checked first;
    /// on error nothing changes.
    pub fn upsert(&self, owner: impl Into<String>, entry: Entry) -> Result<(), RecordsError> {
        let owner = owner.into();
        let entry = Canonical::try_new(&owner, entry)?;
        self.write().insert(owner, entry);
        Ok(())
    }

    /// Forgets `owner`. Returns whether it was there; removing an unknown
    /// owner is not an error (idempotent, may be re-run after a crash).
    pub fn remove(&self, owner: &str) -> bool {
        self.write().remove(owner).is_some()
    }

    /// Replaces the whole table in one step, e.g. when the daemon rebuilds
    /// it from its store on start. All entries are checked first; on error
    /// the old table stays.
    pub fn replace_all<I, O>(&self, entries: I) -> Result<(), RecordsError>
    where
        I: IntoIterator<Item = (O, Entry)>,
        O: Into<String>,
    {
        let mut table = Table::default();
        for (owner, entry) in entries {
            let owner = owner.into();
            let entry = Canonical::try_new(&owner, entry)?;
            table.insert(owner, entry);
        }
        *self.write() = table;
        Ok(())
    }

    /// The addresses `name` resolves to, sorted: `None` when no owner has
    /// the name, `Some(empty)` when it exists without addresses. Case and a
    /// trailing dot do not matter.
    pub fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let key = normalize(name).ok()?;
        self.lookup_key(&key)
    }

    /// [`lookup`](Self::lookup) for a name already in canonical form.
    pub(crate) fn lookup_key(&self, key: &str) -> Option<Vec<Ipv4Addr>> {
        let table = self.read();
        let owners = table.by_name.get(key)?;
        let addrs: BTreeSet<Ipv4Addr> = owners
            .iter()
            .filter_map(|owner| table.owners.get(owner))
            .flat_map(|entry| entry.addrs.iter().copied())
            .collect();
        Some(addrs.into_iter().collect())
    }

    /// The name a reverse lookup of `addr` returns: the first name of the
    /// owner holding it (the first owner by key when several do).
    pub fn reverse(&self, addr: Ipv4Addr) -> Option<String> {
        let table = self.read();
        table
            .by_addr
            .get(&addr)?
            .iter()
            .filter_map(|owner| table.owners.get(owner))
            .find_map(|entry| entry.names.first().cloned())
    }

    /// The names and addresses `owner` has now, in canonical form.
    pub fn get(&self, owner: &str) -> Option<Entry> {
        self.read()
            .owners
            .get(owner)
            .map(|c| Entry { names: c.names.clone(), addrs: c.addrs.iter().copied().collect() })
    }

    /// Number of owners.
    pub fn len(&self) -> usize {
        self.read().owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // Every change keeps the indexes consistent before it returns, so a
    // panic elsewhere while the lock was held leaves a usable table.
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A checked entry: canonical names without duplicates (first spelling
/// keeps its place), addresses as a set.
#[derive(Debug)]
struct Canonical {
    names: Vec<String>,
    addrs: BTreeSet<Ipv4Addr>,
}

impl Canonical {
    fn try_new(owner: &str, entry: Entry) -> Result<Self, RecordsError> {
        if owner.is_empty() {
            return Err(RecordsError::EmptyOwner);
        }
        let mut names = Vec::with_capacity(entry.names.len());
        for name in entry.names {
            let key = normalize(&name).map_err(|reason| RecordsError::InvalidName {
                owner: owner.to_string(),
                name: name.clone(),
                reason,
            })?;
            if !names.contains(&key) {
                names.push(key);
            }
        }
        Ok(Self { names, addrs: entry.addrs.into_iter().collect() })
    }
}

#[derive(Debug, Default)]
struct Table {
    owners: HashMap<String, Canonical>,
    by_name: HashMap<String, BTreeSet<String>>,
    by_addr: HashMap<Ipv4Addr, BTreeSet<String>>,
}

impl Table {
    fn insert(&mut self, owner: String, entry: Canonical) {
        self.remove(&owner);
        for name in &entry.names {
            self.by_name.entry(name.clone()).or_default().insert(owner.clone());
        }
        for addr in &entry.addrs {
            self.by_addr.entry(*addr).or_default().insert(owner.clone());
        }
        self.owners.insert(owner, entry);
    }

    fn remove(&mut self, owner: &str) -> Option<Canonical> {
        let entry = self.owners.remove(owner)?;
        for name in &entry.names {
            unindex(&mut self.by_name, name, owner);
        }
        for addr in &entry.addrs {
            unindex(&mut self.by_addr, addr, owner);
        }
        Some(entry)
    }
}

fn unindex<K: std::hash::Hash + Eq>(index: &mut HashMap<K, BTreeSet<String>>, key: &K, owner: &str) {
    if let Some(owners) = index.get_mut(key) {
        owners.remove(owner);
        if owners.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 88, 0, last)
    }

    fn web(records: &Records) {
        records.upsert("c1", Entry::new(["web-1.prod", "web-1", "web"], [ip(2)])).unwrap();
    }

    #[test]
    fn names_resolve_case_insensitively_with_or_without_the_dot() {
        let records = Records::new();
        web(&records);
        for q in ["web", "WEB", "web.", "Web-1.Prod."] {
            assert_eq!(records.lookup(q), Some(vec![ip(2)]), "{q}");
        }
        assert_eq!(records.lookup("db"), None);
        assert_eq!(records.lookup("web-1.prod.svc"), None);
        assert_eq!(records.lookup("not a name"), None);
    }

    #[test]
    fn upsert_replaces_names_and_addresses_of_the_owner() {
        let records = Records::new();
        web(&records);
        // Rename and restart with a new address.
        records.upsert("c1", Entry::new(["api"], [ip(3)])).unwrap();
        assert_eq!(records.lookup("web"), None);
        assert_eq!(records.lookup("web-1.prod"), None);
        assert_eq!(records.lookup("api"), Some(vec![ip(3)]));
        assert_eq!(records.reverse(ip(2)), None);
        assert_eq!(records.reverse(ip(3)).as_deref(), Some("api"));
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn remove_forgets_every_name_and_is_idempotent() {
        let records = Records::new();
        web(&records);
        assert!(records.remove("c1"));
        assert!(!records.remove("c1"));
        assert_eq!(records.lookup("web"), None);
        assert_eq!(records.reverse(ip(2)), None);
        assert!(records.is_empty());
    }

    #[test]
    fn a_shared_alias_resolves_to_every_owner_until_each_leaves() {
        let records = Records::new();
        records.upsert("c2", Entry::new(["web-2", "web"], [ip(5)])).unwrap();
        web(&records);
        assert_eq!(records.lookup("web"), Some(vec![ip(2), ip(5)]));
        records.remove("c1");
        assert_eq!(records.lookup("web"), Some(vec![ip(5)]));
    }

    #[test]
    fn a_name_without_addresses_exists_but_is_empty() {
        let records = Records::new();
        records.upsert("svc/prod/pay", Entry::new(["pay.prod.svc"], [])).unwrap();
        assert_eq!(records.lookup("pay.prod.svc"), Some(vec![]));
    }

    #[test]
    fn reverse_gives_the_first_name_in_canonical_form() {
        let records = Records::new();
        records.upsert("c1", Entry::new(["Web-1.Prod", "web"], [ip(2)])).unwrap();
        assert_eq!(records.reverse(ip(2)).as_deref(), Some("web-1.prod"));
        assert_eq!(records.get("c1").unwrap().names, vec!["web-1.prod".to_string(), "web".to_string()]);
    }

    #[test]
    fn an_invalid_name_changes_nothing_and_says_which() {
        let records = Records::new();
        web(&records);
        let err = records.upsert("c1", Entry::new(["ok", "bad name"], [ip(9)])).unwrap_err();
        assert!(matches!(
            &err,
            RecordsError::InvalidName { owner, name, reason: NameError::BadChar { ch: ' ' } }
                if owner == "c1" && name == "bad name"
        ));
        assert!(err.to_string().contains("\"bad name\""), "{err}");
        assert_eq!(records.lookup("web"), Some(vec![ip(2)]));
        assert_eq!(records.lookup("ok"), None);
        assert_eq!(records.upsert("", Entry::new(["x"], [ip(1)])), Err(RecordsError::EmptyOwner));
    }

    #[test]
    fn replace_all_swaps_the_table_or_keeps_the_old_one() {
        let records = Records::new();
        web(&records);
        records.replace_all([("c9", Entry::new(["db"], [ip(9)]))]).unwrap();
        assert_eq!(records.lookup("web"), None);
        assert_eq!(records.lookup("db"), Some(vec![ip(9)]));
        assert!(records.replace_all([("c1", Entry::new(["-ok", "a..b"], [ip(1)]))]).is_err());
        assert_eq!(records.lookup("db"), Some(vec![ip(9)]));
    }

    #[test]
    fn clones_share_the_table() {
        let daemon = Records::new();
        let server = daemon.clone();
        web(&daemon);
        assert_eq!(server.lookup("web"), Some(vec![ip(2)]));
    }
}

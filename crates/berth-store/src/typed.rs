//! Typed access to the store's object rows: [`Records`] reads and writes a
//! [`Record`] under its own kind, so callers never name a kind string or
//! decode JSON themselves, and a row that does not decode is
//! [`StoreError::Corrupt`] naming the record and its key.

use berth_core::record::Record;

use crate::{Result, Store, StoreError};

/// Implemented for every [`Store`] (including `dyn Store`).
pub trait Records {
    fn get<R: Record>(&self, key: &str) -> Result<Option<R>>;
    /// Inserts or replaces.
    fn put<R: Record>(&self, key: &str, record: &R) -> Result<()>;
    /// Fails with [`StoreError::Exists`] when the key exists.
    fn create<R: Record>(&self, key: &str, record: &R) -> Result<()>;
    /// Whether there was one.
    fn remove<R: Record>(&self, key: &str) -> Result<bool>;
    /// Every record of the kind, by key.
    fn all<R: Record>(&self) -> Result<Vec<(String, R)>>;
}

impl<S: Store + ?Sized> Records for S {
    fn get<R: Record>(&self, key: &str) -> Result<Option<R>> {
        self.get_object(R::KIND, key)?.map(|v| decode(key, v)).transpose()
    }

    fn put<R: Record>(&self, key: &str, record: &R) -> Result<()> {
        self.put_object(R::KIND, key, &encode(record))
    }

    fn create<R: Record>(&self, key: &str, record: &R) -> Result<()> {
        self.create_object(R::KIND, key, &encode(record))
    }

    fn remove<R: Record>(&self, key: &str) -> Result<bool> {
        self.delete_object(R::KIND, key)
    }

    fn all<R: Record>(&self) -> Result<Vec<(String, R)>> {
        self.list_objects(R::KIND)?
            .into_iter()
            .map(|(key, v)| {
                let r = decode(&key, v)?;
                Ok((key, r))
            })
            .collect()
    }
}

fn encode<R: Record>(record: &R) -> serde_json::Value {
    // Records are plain data (maps keyed by strings, no floats that are not
    // finite), which always serialise.
    serde_json::to_value(record).unwrap_or_else(|e| panic!("{} does not serialise: {e}", R::WHAT))
}

fn decode<R: Record>(key: &str, v: serde_json::Value) -> Result<R> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt { what: R::WHAT, detail: format!("{key}: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeStore;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Note {
        text: String,
    }

    impl Record for Note {
        const KIND: &'static str = "test/Note";
        const WHAT: &'static str = "note";
    }

    #[test]
    fn records_round_trip_under_their_kind() {
        let store = FakeStore::default();
        let s: &dyn Store = &store;
        assert_eq!(s.get::<Note>("a").unwrap(), None);
        s.put("a", &Note { text: "hi".into() }).unwrap();
        assert_eq!(s.get::<Note>("a").unwrap(), Some(Note { text: "hi".into() }));
        assert_eq!(s.list_objects("test/Note").unwrap().len(), 1);
        assert!(matches!(s.create("a", &Note { text: "again".into() }), Err(StoreError::Exists { .. })));
        assert_eq!(s.all::<Note>().unwrap(), vec![("a".to_string(), Note { text: "hi".into() })]);
        assert!(s.remove::<Note>("a").unwrap());
        assert!(!s.remove::<Note>("a").unwrap());
    }

    #[test]
    fn a_row_that_does_not_decode_names_the_record_and_key() {
        let store = FakeStore::default();
        store.put_object("test/Note", "k1", &serde_json::json!({"text": 5})).unwrap();
        let e = store.get::<Note>("k1").unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { what: "note", .. }), "{e}");
        assert!(e.to_string().contains("k1"), "{e}");
    }
}

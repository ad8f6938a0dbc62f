//! Records: values the daemon keeps in its store, each under a fixed kind
//! and a key. The kind is part of the on-disk format: rows are found by it,
//! so it never changes once released. The store's typed accessors
//! (`berth_store::Records`) encode and decode through this trait, so a row
//! that does not decode is an error naming [`Record::WHAT`] and its key,
//! never a default.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub trait Record: Serialize + DeserializeOwned {
    /// The store kind, for example `k8s/Pod`.
    const KIND: &'static str;
    /// What a person calls one, for errors: `pod record`.
    const WHAT: &'static str;
}

//! ConfigMaps and Secrets.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ObjectMeta;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigMapSpec {
    pub meta: ObjectMeta,
    pub data: BTreeMap<String, String>,
    pub binary_data: BTreeMap<String, Vec<u8>>,
    pub immutable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretType {
    Opaque,
    /// `kubernetes.io/tls`: holds `tls.crt` and `tls.key`.
    Tls,
}

impl SecretType {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretType::Opaque => "Opaque",
            SecretType::Tls => "kubernetes.io/tls",
        }
    }
}

/// A Secret. Its `Debug` shows keys and sizes, never values; reading a
/// value takes [`SecretValue::expose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub meta: ObjectMeta,
    pub secret_type: SecretType,
    /// `data` decoded, with `stringData` merged over it as Kubernetes does.
    pub data: BTreeMap<String, SecretValue>,
    pub immutable: bool,
}

/// Secret bytes that do not print themselves.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretValue(bytes)
    }

    /// The value itself; call only where it is meant to be used or shown on
    /// request.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0.len())
    }
}

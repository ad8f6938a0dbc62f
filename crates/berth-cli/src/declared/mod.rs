//! Declared state: the kubectl-like verbs (`apply`, `get`, `describe`,
//! `delete`, `scale`, `rollout`) and `logs`/`exec` aimed at a pod or a deployment.
//!
//! The daemon serves objects as Kubernetes JSON under `/v1/objects`; the
//! CLI keeps them as `serde_json::Value` and reads the fields it shows, so
//! a field the daemon adds later never breaks an older CLI. Everything
//! that turns objects into text is a pure function of the values and a
//! `now` passed in ([`get`], [`describe`], [`pod`], [`resolve`],
//! [`manifests`]' lines), tested on hand-written objects; [`commands`]
//! holds the async edges that call the daemon and print.

mod age;
mod commands;
mod describe;
mod get;
mod kind;
mod manifests;
mod pod;
mod resolve;
mod rollout;
mod value;

pub use commands::{apply, delete, describe, exec, get, logs, scale};
pub use rollout::rollout;

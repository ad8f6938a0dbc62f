//! Berth's daemon: it owns all state and serves the REST API.
//!
//! Design: [`Daemon::start`] opens the state root (taking an exclusive lock
//! so two daemons never share one), the store and the image store, then
//! serves `/v1/...` on a root-only unix socket. Handlers parse requests into
//! typed values, call the services, and map every error through one
//! exhaustive `match` to an HTTP status.
//!
//! It must never let a client touch the store directly, and never leave a
//! half-applied change behind when a request fails.

pub mod api;
pub mod config;
pub mod containers;
mod daemon;
pub mod declared;
pub mod events;
pub mod host;
mod metrics;
pub mod networks;
pub mod probes;
pub mod state_dirs;
#[cfg(test)]
mod testlab;

pub use config::DaemonConfig;
pub use daemon::{Daemon, DaemonOptions};

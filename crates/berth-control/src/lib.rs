//! How Berth decides: the pure control logic behind the daemon's
//! reconcilers.
//!
//! What it is for: the reconcilers in `berth-daemon` observe the host and
//! the store, hand what they saw to this crate, and carry out what it
//! answers. Everything that decides lives here:
//!
//! - [`deployment`]: which pods a Deployment creates or removes next
//!   (maxSurge/maxUnavailable), which backends a Service has, revision
//!   history, progress deadlines and rollback;
//! - [`argo`], [`canary`], [`bluegreen`], [`analysis_run`]: Argo Rollouts'
//!   strategies as `next(state, event)` machines, and analysis runs;
//! - [`backoff`]: crash back-off (one policy, for pods and for
//!   `berth run --restart` containers alike);
//! - [`health`]: probe results into started/ready/restart verdicts;
//! - [`pod`]: a pod's kept state, and its containers' create requests
//!   ([`pod::spec`]).
//!
//! Design: values in, values out. Time arrives as an argument (a
//! `Duration` since an epoch the caller chooses, or a timestamp), so the
//! machines are tested exhaustively on virtual time, with property tests
//! against reference models where the rules invite them.
//!
//! It must never do I/O, read a clock, spawn tasks or depend on tokio, nix,
//! the store or anything that does. Network policy evaluation and patch
//! planning belong beside it as pure crates of their own, with the daemon
//! as their shell.

pub mod analysis_run;
pub mod argo;
pub mod backoff;
pub mod bluegreen;
pub mod canary;
pub mod deployment;
pub mod health;
pub mod pod;

pub use backoff::{CrashBackoff, RestartTracker};
pub use health::{ContainerHealth, ProbeResult, ProbeState, ProbeTracker};

//! Berth's container shim and OCI runtime driver.
//!
//! Design: `berth shim` is started once per container by the daemon. It
//! detaches into its own session, moves into a cgroup of its own (out of
//! the daemon's, so stopping the daemon's service does not kill it),
//! records who it is ([`identity`]: PID, start time, boot ID, so a reused
//! PID is never mistaken for it), becomes a child subreaper, has the OCI
//! runtime (runc by default) create and start the container with its stdout
//! and stderr on pipes the shim holds, writes that output to a JSON-lines
//! log file with size-based rotation, reaps the container's init process,
//! and writes the exit (code, signal, time, OOM kill) atomically to its
//! state directory before asking the runtime to delete the container. It
//! needs nothing from the daemon once started, so the daemon can restart or
//! crash without touching a running container; the daemon finds the
//! outcome in the state directory ([`protocol`]).
//!
//! It must never hold more than a small buffer of output in memory, and
//! never exit before the exit record is durable.

pub mod identity;
pub mod logfile;
pub mod protocol;
pub mod runtime;
mod shim;

pub use shim::{run, ShimArgs};

//! Progress reporting for long operations. The sender never fails: if the
//! client went away, the operation still completes (as docker's pull does).

use berth_core::api::{BlobProgress, ProgressEvent};
use tokio::sync::mpsc::UnboundedSender;

#[derive(Clone)]
pub struct Progress {
    tx: Option<UnboundedSender<ProgressEvent>>,
}

impl Progress {
    pub fn new(tx: UnboundedSender<ProgressEvent>) -> Self {
        Self { tx: Some(tx) }
    }

    /// Reports nothing.
    pub fn none() -> Self {
        Self { tx: None }
    }

    pub fn send(&self, e: ProgressEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e);
        }
    }

    pub fn blob(&self, digest: &berth_core::Digest, current: u64, total: u64, state: &str) {
        self.send(ProgressEvent::Blob(BlobProgress {
            digest: digest.to_string(),
            current,
            total,
            state: state.to_string(),
        }));
    }

    pub fn warn(&self, message: String) {
        self.send(ProgressEvent::Warning { message });
    }
}

/// Emits blob progress at most every `STEP` bytes, so a fast transfer does
/// not flood the stream.
pub(crate) struct Throttle {
    last: u64,
}

const STEP: u64 = 256 * 1024;

impl Throttle {
    pub fn new() -> Self {
        Self { last: 0 }
    }

    pub fn due(&mut self, current: u64) -> bool {
        if current >= self.last + STEP {
            self.last = current;
            true
        } else {
            false
        }
    }
}

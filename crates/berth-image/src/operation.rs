//! [`Operation`]: what one pull or import has pinned and created.
//!
//! Every digest an operation writes or relies on is pinned (counted, since
//! operations overlap) so garbage collection leaves it alone. If the
//! operation ends without [`Operation::succeed`], dropping it removes what
//! it created, except what an image now references or another operation
//! still pins: a failed operation changes nothing, and never takes
//! something from a neighbour.

use std::collections::HashMap;
use std::sync::Arc;

use berth_core::Digest;

use crate::store::{remove_tree, ImageStore};

pub(crate) struct Operation {
    store: Arc<ImageStore>,
    pins: Vec<Digest>,
    new_blobs: Vec<Digest>,
    new_layers: Vec<Digest>,
    succeeded: bool,
}

/// The pin counts, shared by all operations of one store.
pub(crate) type Pins = HashMap<Digest, usize>;

impl Operation {
    pub fn new(store: Arc<ImageStore>) -> Self {
        Self { store, pins: Vec::new(), new_blobs: Vec::new(), new_layers: Vec::new(), succeeded: false }
    }

    /// Protects `d` from garbage collection until the operation ends.
    pub fn pin(&mut self, d: &Digest) {
        *self.store.pins().entry(d.clone()).or_default() += 1;
        self.pins.push(d.clone());
    }

    /// Records a blob this operation wrote (it must be pinned already).
    pub fn created_blob(&mut self, d: &Digest) {
        self.new_blobs.push(d.clone());
    }

    /// Records a layer directory this operation unpacked.
    pub fn created_layer(&mut self, d: &Digest) {
        self.new_layers.push(d.clone());
    }

    /// Keeps what the operation created.
    pub fn succeed(&mut self) {
        self.succeeded = true;
    }

    fn own_count(&self, d: &Digest) -> usize {
        self.pins.iter().filter(|p| *p == d).count()
    }

    fn roll_back(&self) {
        let _gc = self.store.gc_guard();
        let Ok((blobs_used, layers_used)) = self.store.references() else { return };
        let pins = self.store.pins().clone();
        let others = |d: &Digest| pins.get(d).copied().unwrap_or(0) > self.own_count(d);
        for d in &self.new_layers {
            if !layers_used.contains(d) && !others(d) {
                let _ = self.store.store.delete_layer(d);
                let _ = remove_tree(&self.store.layer_dir(d));
            }
        }
        for d in &self.new_blobs {
            if !blobs_used.contains(d) && !others(d) {
                let _ = self.store.blobs.remove(d);
            }
        }
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        if !self.succeeded {
            self.roll_back();
        }
        let mut pins = self.store.pins();
        for d in &self.pins {
            if let Some(n) = pins.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(d);
                }
            }
        }
    }
}

//! Berth's domain vocabulary, free of effects.
//!
//! This crate holds the values every other crate speaks in: image references,
//! content digests, OCI and Docker media types, the rules that decide whether
//! a path inside a layer is safe and what a whiteout means, and the JSON
//! values of the REST API.
//!
//! Design: plain data plus pure functions, each validated at construction
//! (`parse`/`try_new`), so that a value that exists is a value that is valid.
//!
//! It must never do I/O, spawn tasks, read the clock for decisions or depend
//! on tokio, nix or any crate that does. Everything here is tested without
//! root.

pub mod api;
pub mod clock;
pub mod container;
pub mod digest;
pub mod frames;
pub mod kind;
pub mod layerpath;
pub mod media;
pub mod net;
pub mod platform;
pub mod record;
pub mod reference;
pub mod size;

pub use digest::{Digest, DigestError};
pub use media::{Compression, MediaType, MediaTypeError};
pub use platform::Platform;
pub use reference::{ImageRef, ReferenceError};

//! stub
// Manifest errors are rare and carry the context a person needs (document,
// field path, line); boxing them would cost clarity and buy nothing.
#![allow(clippy::result_large_err)]
pub mod backoff;
pub mod error;
pub mod health;
pub mod model;
pub mod names;
pub mod parse;
pub mod path;
pub mod quantity;
pub mod schema;
pub mod selector;
pub mod validate;
pub mod yaml;

pub use validate::load;

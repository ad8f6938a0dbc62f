//! Berth's manifest layer (stub while the crate grows).
pub mod error;
pub mod names;
pub mod path;
pub mod quantity;
pub mod schema;
pub mod selector;
pub mod yaml;

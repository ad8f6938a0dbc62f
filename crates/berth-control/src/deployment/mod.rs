//! A Deployment's decisions: which pods to create or remove next and which
//! backends its Services have ([`plan`]); its revision history, progress
//! and rollback ([`revisions`]).

pub mod plan;
pub mod revisions;

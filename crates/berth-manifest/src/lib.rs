//! Kubernetes manifests in, berth's desired state out.
//!
//! What it is for: `berth apply -f` reads multi-document YAML holding
//! `apps/v1 Deployment`, `v1 Service`, `v1 ConfigMap` and `v1 Secret`
//! objects, and Argo Rollouts' `argoproj.io/v1alpha1 Rollout` and
//! `AnalysisTemplate` (also inside a `v1 List`). This crate turns that text into plain,
//! validated values the reconcilers work from ([`model`]), or into every
//! problem found, each naming the document, the field path and what to do:
//!
//! ```text
//! deployment/web: spec.template.spec.hostNetwork is not supported by berth; remove it; ...
//! deployment/web: spec.template.spec.containers[0].imagePullPolice is not a field of Container; did you mean imagePullPolicy?
//! ```
//!
//! It also holds what the manifests' own grammars need: label
//! [`selector`]s (matching, canonical form, kubectl's `-l` syntax), resource
//! [`quantity`] parsing, and the conditions of analysis metrics ([`expr`]).
//! The logic that runs the objects (planning, strategies, back-off, probes)
//! is `berth-control`'s.
//!
//! Design, in stages:
//! 1. [`yaml`] reads the stream into trees that keep line and column, with
//!    the scalar rules of Kubernetes' own YAML reader (go-yaml v2), duplicate
//!    keys refused and aliases bounded.
//! 2. [`mod@parse`] routes each document by `apiVersion` + `kind` and decodes it
//!    into the `k8s-openapi` type (or berth's own [`argo`] types), recording
//!    fields the type does not know (Kubernetes' types ignore them silently).
//! 3. [`validate`] walks every field against the allow-list in [`schema`]
//!    (the single source of truth for the supported subset; `SUPPORTED.md`
//!    is generated from it and tested against it), then checks values as
//!    Kubernetes validation does while building the [`model`] types with
//!    defaults applied. Nothing is silently ignored: a field is supported,
//!    or refused as unknown, or refused as unsupported.
//!
//! [`load`] runs all three. [`check_references`] checks what one object
//! names in another (a Rollout's AnalysisTemplates) over a set of loaded
//! objects. The same input always gives the same result,
//! and [`model::PodTemplate::hash`] gives a template the same revision hash
//! however it is spelled.
//!
//! It must never do I/O, read a clock, spawn tasks or depend on tokio, nix
//! or anything that does; never print a secret value (`Debug` of secrets is
//! redacted); never accept a field it does not act on.
//!
//! ```
//! let objects = berth_manifest::load(
//!     "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n",
//! )
//! .unwrap();
//! assert_eq!(objects[0].key().to_string(), "service/web");
//!
//! let errors = berth_manifest::load("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n").unwrap_err();
//! assert!(errors.to_string().starts_with("pod/p: v1 Pod is not a kind berth reads"));
//! ```

// Manifest errors are rare and carry the context a person needs (document,
// field path, line); boxing them would cost clarity and buy nothing.
#![allow(clippy::result_large_err)]

pub mod argo;
pub mod error;
pub mod expr;
pub mod model;
pub mod names;
pub mod parse;
pub mod path;
pub mod quantity;
pub mod schema;
pub mod selector;
pub mod validate;
pub mod yaml;

#[cfg(test)]
mod fuzz_tests;

pub use error::{DocumentRef, ManifestError, ManifestErrors};
pub use expr::{Condition, EvalError, Vars};
pub use model::{Object, ObjectKey};
pub use parse::{parse, Document, Manifest};
pub use path::FieldPath;
pub use quantity::Quantity;
pub use selector::{Labels, Selector};
pub use validate::{check_references, load, load_documents, load_documents_warned, Warning};

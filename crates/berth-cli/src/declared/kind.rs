//! Resource types as typed on the command line, and the `KIND NAME...` /
//! `KIND/NAME...` argument forms. The types themselves are
//! [`berth_core::kind`]'s, shared with the daemon.

pub use berth_core::kind::{qualified_kind, Kind};

use crate::client::{CliError, Result};

/// Reads a type as typed (plural, singular, short name or `kind.group`,
/// any case), or says which types there are.
pub fn parse_kind(s: &str) -> Result<Kind> {
    Kind::parse(s).ok_or_else(|| {
        CliError::Usage(format!("the server doesn't have a resource type {s:?}; berth serves {}", Kind::valid_list()))
    })
}

/// What the positional arguments of get, describe, delete and scale name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every object of these types (`get pods`, `get deploy,svc`).
    All(Vec<Kind>),
    /// These objects (`get pod a b`, `get pod/a deploy/b`).
    Named(Vec<(Kind, String)>),
}

/// Reads `KIND[,KIND...] [NAME...]` or `KIND/NAME...`.
pub fn parse_selection(args: &[String]) -> Result<Selection> {
    let Some(first) = args.first() else {
        return Err(CliError::Usage(format!("name a resource type, e.g. 'pods'; berth serves {}", Kind::valid_list())));
    };
    if first.contains('/') {
        let named = args.iter().map(|a| parse_slash(a)).collect::<Result<Vec<_>>>()?;
        return Ok(Selection::Named(named));
    }
    let kinds = first.split(',').filter(|k| !k.is_empty()).map(parse_kind).collect::<Result<Vec<_>>>()?;
    let names = &args[1..];
    if names.is_empty() {
        return Ok(Selection::All(kinds));
    }
    if let Some(bad) = names.iter().find(|n| n.contains('/')) {
        return Err(CliError::Usage(format!(
            "{bad:?}: give either KIND NAME... or KIND/NAME..., not both (e.g. '{} {}')",
            first,
            bad.rsplit('/').next().unwrap_or_default()
        )));
    }
    let [kind] = kinds[..] else {
        return Err(CliError::Usage(format!(
            "names need exactly one resource type, not {first:?}; for several types write KIND/NAME..."
        )));
    };
    Ok(Selection::Named(names.iter().map(|n| (kind, n.clone())).collect()))
}

/// `deploy/web` → (Deployment, "web").
pub fn parse_slash(arg: &str) -> Result<(Kind, String)> {
    match arg.split_once('/') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((parse_kind(kind)?, name.to_string()))
        }
        _ => Err(CliError::Usage(format!("{arg:?} is not KIND/NAME, e.g. deploy/web or pod/web-5d8f7-abcde"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unknown_kind_is_a_usage_error_listing_the_valid_ones() {
        let e = parse_kind("foo").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "the server doesn't have a resource type \"foo\"; berth serves pods (po), deployments (deploy), \
             services (svc), endpoints (ep), configmaps (cm), secrets, events (ev), rollouts (ro), analysistemplates"
        );
        assert!(parse_kind("pods.apps").is_err());
    }

    #[test]
    fn selections() {
        assert_eq!(parse_selection(&args(&["pods"])).unwrap(), Selection::All(vec![Kind::Pod]));
        assert_eq!(
            parse_selection(&args(&["deploy,svc"])).unwrap(),
            Selection::All(vec![Kind::Deployment, Kind::Service])
        );
        assert_eq!(
            parse_selection(&args(&["po", "a", "b"])).unwrap(),
            Selection::Named(vec![(Kind::Pod, "a".into()), (Kind::Pod, "b".into())])
        );
        assert_eq!(
            parse_selection(&args(&["pod/a", "deploy/web"])).unwrap(),
            Selection::Named(vec![(Kind::Pod, "a".into()), (Kind::Deployment, "web".into())])
        );
    }

    #[test]
    fn malformed_selections() {
        assert!(parse_selection(&[]).unwrap_err().to_string().contains("name a resource type"));
        assert!(parse_selection(&args(&["pod/a", "b"])).unwrap_err().to_string().contains("not KIND/NAME"));
        assert!(parse_selection(&args(&["pod/"])).is_err());
        assert!(parse_selection(&args(&["/a"])).is_err());
        assert!(parse_selection(&args(&["pod", "svc/a"])).unwrap_err().to_string().contains("not both"));
        assert!(parse_selection(&args(&["pod,svc", "a"])).unwrap_err().to_string().contains("exactly one"));
        assert!(parse_selection(&args(&["foo/a"])).unwrap_err().to_string().contains("resource type \"foo\""));
    }
}

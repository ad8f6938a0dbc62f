//! The container's process: command line, environment and working directory
//! from the image config and the request, with Docker's precedence rules.

use berth_core::api::{ContainerCreateRequest, ImageRunConfig};

use crate::SpecError;

/// `PATH` when neither the image nor the request sets one (Docker's value).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `entrypoint + cmd`: the request's entrypoint replaces the image's and then
/// also drops the image's Cmd; the request's cmd replaces the image's.
pub fn resolve_args(image: &ImageRunConfig, request: &ContainerCreateRequest) -> Result<Vec<String>, SpecError> {
    let entrypoint = request.entrypoint.as_ref().unwrap_or(&image.entrypoint);
    let cmd: &[String] = match (&request.cmd, &request.entrypoint) {
        (Some(cmd), _) => cmd,
        (None, Some(_)) => &[],
        (None, None) => &image.cmd,
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::NoCommand);
    }
    no_nul("the command", args.iter())?;
    Ok(args)
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// The image's environment, overridden (same key replaces, in place) and
/// extended by the request's; `PATH` defaults to [`DEFAULT_PATH`],
/// `HOSTNAME` to the container's hostname and `HOME` to the user's home (or
/// `/`), each only when absent, as Docker does.
pub fn merge_env(
    image: &ImageRunConfig,
    request: &ContainerCreateRequest,
    hostname: &str,
    home: Option<&str>,
) -> Result<Vec<String>, SpecError> {
    for entry in &request.env {
        match entry.split_once('=') {
            Some((k, _)) if !k.is_empty() => {}
            _ => return Err(SpecError::InvalidEnv { entry: entry.clone() }),
        }
    }
    no_nul("the environment", image.env.iter().chain(&request.env))?;

    let mut env: Vec<String> = Vec::new();
    for entry in image.env.iter().chain(&request.env) {
        let key = env_key(entry);
        match env.iter_mut().find(|e| env_key(e) == key) {
            Some(slot) => *slot = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    let has = |env: &[String], key: &str| env.iter().any(|e| env_key(e) == key);
    let mut defaults = Vec::new();
    if !has(&env, "PATH") {
        defaults.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        defaults.push(format!("HOSTNAME={hostname}"));
    }
    defaults.extend(env);
    if !has(&defaults, "HOME") {
        let home = home.filter(|h| h.starts_with('/')).unwrap_or("/");
        defaults.push(format!("HOME={home}"));
    }
    Ok(defaults)
}

/// The request's workdir, else the image's, else `/`; it must be absolute.
pub fn resolve_cwd(image: &ImageRunConfig, request: &ContainerCreateRequest) -> Result<String, SpecError> {
    let cwd = request.workdir.as_deref().or(image.working_dir.as_deref()).filter(|w| !w.is_empty()).unwrap_or("/");
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativeWorkdir { workdir: cwd.to_string() });
    }
    no_nul("workdir", std::iter::once(&cwd.to_string()))?;
    Ok(cwd.to_string())
}

pub(crate) fn no_nul<'a>(field: &str, mut values: impl Iterator<Item = &'a String>) -> Result<(), SpecError> {
    if values.any(|v| v.contains('\0')) {
        return Err(SpecError::NulByte { field: field.to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageRunConfig {
        ImageRunConfig { entrypoint: v(entrypoint), cmd: v(cmd), ..Default::default() }
    }

    fn request(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerCreateRequest {
        ContainerCreateRequest { entrypoint: entrypoint.map(v), cmd: cmd.map(v), ..Default::default() }
    }

    /// Every combination of image entrypoint/cmd and request entrypoint/cmd.
    #[test]
    fn command_resolution_matrix() {
        let e: &[&str] = &["/ep", "-x"];
        let c: &[&str] = &["run"];
        let re: &[&str] = &["/override"];
        let rc: &[&str] = &["other", "arg"];
        /// image entrypoint, image cmd, request entrypoint, request cmd, expected args.
        type Case<'a> =
            (&'a [&'a str], &'a [&'a str], Option<&'a [&'a str]>, Option<&'a [&'a str]>, Option<Vec<&'a str>>);
        let cases: Vec<Case> = vec![
            // image only
            (e, c, None, None, Some(vec!["/ep", "-x", "run"])),
            (e, &[], None, None, Some(vec!["/ep", "-x"])),
            (&[], c, None, None, Some(vec!["run"])),
            (&[], &[], None, None, None),
            // request cmd replaces the image cmd, keeps the image entrypoint
            (e, c, None, Some(rc), Some(vec!["/ep", "-x", "other", "arg"])),
            (&[], c, None, Some(rc), Some(vec!["other", "arg"])),
            (&[], &[], None, Some(rc), Some(vec!["other", "arg"])),
            (e, c, None, Some(&[]), Some(vec!["/ep", "-x"])),
            (&[], c, None, Some(&[]), None),
            // request entrypoint replaces the entrypoint and drops the image cmd
            (e, c, Some(re), None, Some(vec!["/override"])),
            (&[], c, Some(re), None, Some(vec!["/override"])),
            (e, c, Some(re), Some(rc), Some(vec!["/override", "other", "arg"])),
            // an empty entrypoint clears it (docker --entrypoint "")
            (e, c, Some(&[]), None, None),
            (e, c, Some(&[]), Some(rc), Some(vec!["other", "arg"])),
        ];
        for (i, (ie, ic, qe, qc, want)) in cases.into_iter().enumerate() {
            let got = resolve_args(&image(ie, ic), &request(qe, qc));
            match want {
                Some(w) => assert_eq!(got.unwrap(), v(&w), "case {i}"),
                None => assert!(matches!(got, Err(SpecError::NoCommand)), "case {i}: {got:?}"),
            }
        }
    }

    #[test]
    fn empty_program_and_nul_bytes_are_rejected() {
        assert!(matches!(resolve_args(&image(&[""], &["x"]), &request(None, None)), Err(SpecError::NoCommand)));
        let e = resolve_args(&image(&["/bin/sh", "a\0b"], &[]), &request(None, None)).unwrap_err();
        assert!(matches!(e, SpecError::NulByte { .. }));
        assert_eq!(SpecError::NoCommand.to_string(), "no command: the image has no Cmd/Entrypoint; give one");
    }

    #[test]
    fn env_merge_overrides_in_place_and_adds_defaults() {
        let img = ImageRunConfig { env: v(&["A=1", "PATH=/img/bin", "B=2", "EMPTY="]), ..Default::default() };
        let req = ContainerCreateRequest { env: v(&["B=20", "C=3", "A=", "X=a=b"]), ..Default::default() };
        let env = merge_env(&img, &req, "h1", Some("/home/app")).unwrap();
        assert_eq!(env, v(&["HOSTNAME=h1", "A=", "PATH=/img/bin", "B=20", "EMPTY=", "C=3", "X=a=b", "HOME=/home/app"]));
    }

    #[test]
    fn env_defaults_path_and_respects_user_hostname_and_home() {
        let img = ImageRunConfig::default();
        let req = ContainerCreateRequest { env: v(&["HOSTNAME=mine", "HOME=/data"]), ..Default::default() };
        let env = merge_env(&img, &req, "h1", None).unwrap();
        assert_eq!(env, v(&[&format!("PATH={DEFAULT_PATH}"), "HOSTNAME=mine", "HOME=/data"]));
        let env = merge_env(&img, &ContainerCreateRequest::default(), "h1", None).unwrap();
        assert_eq!(env.last().unwrap(), "HOME=/");
    }

    #[test]
    fn bad_env_entries_are_errors() {
        for bad in ["NOEQUALS", "=value", ""] {
            let req = ContainerCreateRequest { env: v(&[bad]), ..Default::default() };
            let e = merge_env(&ImageRunConfig::default(), &req, "h", None).unwrap_err();
            assert!(matches!(&e, SpecError::InvalidEnv { entry } if entry == bad), "{bad}");
        }
        let req = ContainerCreateRequest { env: v(&["A=x\0y"]), ..Default::default() };
        assert!(matches!(merge_env(&ImageRunConfig::default(), &req, "h", None), Err(SpecError::NulByte { .. })));
    }

    #[test]
    fn cwd_precedence_and_validation() {
        let img = ImageRunConfig { working_dir: Some("/app".into()), ..Default::default() };
        assert_eq!(resolve_cwd(&img, &ContainerCreateRequest::default()).unwrap(), "/app");
        let req = ContainerCreateRequest { workdir: Some("/work".into()), ..Default::default() };
        assert_eq!(resolve_cwd(&img, &req).unwrap(), "/work");
        assert_eq!(resolve_cwd(&ImageRunConfig::default(), &ContainerCreateRequest::default()).unwrap(), "/");
        let empty = ImageRunConfig { working_dir: Some(String::new()), ..Default::default() };
        assert_eq!(resolve_cwd(&empty, &ContainerCreateRequest::default()).unwrap(), "/");
        let rel = ContainerCreateRequest { workdir: Some("app".into()), ..Default::default() };
        assert!(matches!(resolve_cwd(&img, &rel), Err(SpecError::RelativeWorkdir { workdir }) if workdir == "app"));
    }
}

//! Image commands: pull, push, images, rmi, tag, image ..., login, system df.

use std::io::Read;

use berth_core::api::{
    DiskUsage, ExportRequest, ExportResponse, ImageInspect, ImageSummary, ImportRequest, ImportResponse, LoginRequest,
    LogoutRequest, ProgressEvent, PruneResponse, PullRequest, PushRequest, RemoveImageResponse, TagRequest,
    VersionInfo,
};
use berth_core::size::human;
use berth_core::ImageRef;

use crate::args::{ImageCommand, ImportArgs, ListArgs, LoginArgs, Output, PullArgs, PushArgs, RemoveArgs};
use crate::client::{segment, CliError, Client, Result};
use crate::output::{ago, structured, table};
use crate::progress::Reporter;

fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:").unwrap_or(id).chars().take(12).collect()
}

pub async fn version(client: &Client, output: Output) -> Result<()> {
    let server: Result<VersionInfo> = client.get("/v1/version").await;
    if output == Output::Json {
        let v = serde_json::json!({"client": env!("CARGO_PKG_VERSION"), "server": server.as_ref().ok()});
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return server.map(|_| ());
    }
    println!("Client: {}", env!("CARGO_PKG_VERSION"));
    let s = server?;
    println!(
        "Server: {} (API {}, {}/{})\nRoot:   {}\nRun:    {}",
        s.version, s.api_version, s.os, s.arch, s.root, s.run_root
    );
    Ok(())
}

/// Runs a streaming pull or push and returns the final image.
async fn stream(client: &Client, path: &str, body: &impl serde::Serialize, quiet: bool) -> Result<ImageSummary> {
    let mut reporter = Reporter::new(quiet);
    let mut last = None;
    client
        .post_stream(path, body, |e: ProgressEvent| {
            reporter.event(&e);
            if matches!(e, ProgressEvent::Done { .. } | ProgressEvent::Error { .. }) {
                last = Some(e);
            }
        })
        .await?;
    match last {
        Some(ProgressEvent::Done { image }) => Ok(image),
        Some(ProgressEvent::Error { error, kind }) => {
            Err(CliError::Api { status: hyper::StatusCode::OK, body: berth_core::api::ErrorBody { error, kind } })
        }
        _ => Err(CliError::Unreachable("the daemon ended the stream without a result; check its log".into())),
    }
}

pub async fn pull(client: &Client, a: PullArgs) -> Result<()> {
    let req = PullRequest { reference: a.reference.clone(), platform: a.platform };
    let image = stream(client, "/v1/images/pull", &req, a.quiet).await?;
    if a.quiet {
        println!("{}", image.digest);
    } else {
        let shown = ImageRef::parse(&a.reference).map(|r| r.familiar()).unwrap_or(a.reference);
        println!("Pulled {shown}\nDigest: {}\nID:     {}", image.digest, short_id(&image.id));
    }
    Ok(())
}

pub async fn push(client: &Client, a: PushArgs) -> Result<()> {
    let req = PushRequest { reference: a.reference.clone() };
    let image = stream(client, "/v1/images/push", &req, a.quiet).await?;
    if a.quiet {
        println!("{}", image.digest);
    } else {
        println!("Pushed {}\nDigest: {}", a.reference, image.digest);
    }
    Ok(())
}

pub async fn list(client: &Client, a: ListArgs) -> Result<()> {
    let images: Vec<ImageSummary> = client.get("/v1/images").await?;
    if a.quiet {
        for i in &images {
            println!("{}", short_id(&i.id));
        }
        return Ok(());
    }
    if structured(&images, a.output)? {
        return Ok(());
    }
    let wide = a.output == Output::Wide;
    let mut rows = Vec::new();
    for i in &images {
        let names: Vec<(String, String)> = if i.repo_tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            i.repo_tags
                .iter()
                .map(|t| match ImageRef::parse(t) {
                    Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()),
                    Err(_) => (t.clone(), "<none>".into()),
                })
                .collect()
        };
        for (repo, tag) in names {
            let mut row = vec![repo, tag, short_id(&i.id), ago(i.created.as_deref()), human(i.size)];
            if wide {
                row.push(human(i.compressed_size));
                row.push(i.layer_count.to_string());
                row.push(i.platform.clone());
                row.push(i.digest.clone());
            }
            rows.push(row);
        }
    }
    if wide {
        table(
            &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "COMPRESSED", "LAYERS", "PLATFORM", "DIGEST"],
            &rows,
        );
    } else {
        table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows);
    }
    Ok(())
}

pub async fn remove(client: &Client, a: RemoveArgs) -> Result<()> {
    let mut failed = None;
    for name in &a.images {
        let path = format!("/v1/images/{}?force={}", segment(name), a.force);
        match client.delete::<RemoveImageResponse>(&path).await {
            Ok(r) => {
                for t in r.untagged {
                    println!("Untagged: {t}");
                }
                for d in r.deleted {
                    println!("Deleted: {d}");
                }
            }
            Err(e @ CliError::Unreachable(_)) => return Err(e),
            Err(e) if a.images.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("berth: {e}");
                failed = Some(e);
            }
        }
    }
    // Like docker: every name is tried, each failure is printed once, and the
    // exit code reports any failure.
    match failed {
        Some(_) => Err(CliError::Silent),
        None => Ok(()),
    }
}

pub async fn tag(client: &Client, source: &str, target: &str) -> Result<()> {
    let _: ImageSummary =
        client.post("/v1/images/tag", &TagRequest { source: source.into(), target: target.into() }).await?;
    Ok(())
}

fn absolute(p: &std::path::Path) -> Result<String> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| CliError::Other(format!("cannot resolve {}: {e}", p.display())))?.join(p)
    };
    Ok(abs.display().to_string())
}

/// `--config-cmd '["a","b"]'` or `--config-cmd 'a b'`.
fn command_list(flag: &str, s: &str) -> Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        return serde_json::from_str(s)
            .map_err(|e| CliError::Other(format!("{flag} {s:?} is not a JSON array of strings: {e}")));
    }
    let parts: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    if parts.is_empty() {
        return Err(CliError::Other(format!("{flag} is empty")));
    }
    Ok(parts)
}

async fn import(client: &Client, a: ImportArgs) -> Result<()> {
    let req = ImportRequest {
        path: absolute(&a.path)?,
        tag: a.tag,
        config_cmd: a.config_cmd.as_deref().map(|s| command_list("--config-cmd", s)).transpose()?,
        config_entrypoint: a
            .config_entrypoint
            .as_deref()
            .map(|s| command_list("--config-entrypoint", s))
            .transpose()?,
        config_env: a.config_env,
        config_workdir: a.config_workdir,
    };
    let r: ImportResponse = client.post("/v1/images/import", &req).await?;
    for i in &r.images {
        let name = i.repo_tags.first().cloned().unwrap_or_else(|| "<untagged>".into());
        println!("Imported {name} ({}) from {}\nDigest: {}", short_id(&i.id), r.format, i.digest);
    }
    Ok(())
}

pub async fn image(client: &Client, cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Ls(a) => list(client, a).await,
        ImageCommand::Inspect { image, output } => {
            let i: ImageInspect = client.get(&format!("/v1/images/{}", segment(&image))).await?;
            if !structured(&i, output)? {
                structured(&i, Output::Json)?;
            }
            Ok(())
        }
        ImageCommand::Import(a) => import(client, a).await,
        ImageCommand::Export { image, path } => {
            let r: ExportResponse =
                client.post("/v1/images/export", &ExportRequest { reference: image, path: absolute(&path)? }).await?;
            println!("Exported {} ({}) to {}", r.digest, human(r.bytes), r.path);
            Ok(())
        }
        ImageCommand::Pull(a) => pull(client, a).await,
        ImageCommand::Push(a) => push(client, a).await,
        ImageCommand::Rm(a) => remove(client, a).await,
        ImageCommand::Tag { source, target } => tag(client, &source, &target).await,
        ImageCommand::Prune { all } => {
            let r: PruneResponse = client.post(&format!("/v1/images/prune?all={all}"), &serde_json::json!({})).await?;
            for d in &r.deleted_images {
                println!("Deleted image: {d}");
            }
            println!(
                "Removed {} blob(s) and {} unpacked layer(s); reclaimed {}",
                r.deleted_blobs,
                r.deleted_layers,
                human(r.reclaimed_bytes)
            );
            Ok(())
        }
    }
}

pub async fn login(client: &Client, a: LoginArgs) -> Result<()> {
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::Other(format!("cannot read the password from stdin: {e}")))?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => return Err(CliError::Other("give the password with --password-stdin (or --password)".into())),
    };
    client
        .post_empty("/v1/auth/login", &LoginRequest { registry: a.registry.clone(), username: a.username, password })
        .await?;
    println!("Login to {} succeeded", a.registry);
    Ok(())
}

pub async fn logout(client: &Client, registry: &str) -> Result<()> {
    client.post_empty("/v1/auth/logout", &LogoutRequest { registry: registry.into() }).await?;
    println!("Removed credentials for {registry}");
    Ok(())
}

pub async fn disk_usage(client: &Client, verbose: bool, output: Output) -> Result<()> {
    let df: DiskUsage = client.get("/v1/system/df").await?;
    if structured(&df, output)? {
        return Ok(());
    }
    let on_disk = df.blobs_on_disk + df.layers_on_disk;
    table(
        &["TYPE", "TOTAL", "SIZE IF UNSHARED", "ON DISK", "SHARED SAVINGS", "RECLAIMABLE"],
        &[vec![
            "Images".into(),
            df.image_count.to_string(),
            human(df.total_compressed + df.total_unpacked),
            human(on_disk),
            human(df.shared_savings),
            human(df.reclaimable),
        ]],
    );
    if verbose {
        println!("\nImages space usage (unpacked bytes; SHARED is in layers other images use too):\n");
        let rows: Vec<Vec<String>> = df
            .images
            .iter()
            .map(|i| {
                vec![
                    i.repo_tags
                        .first()
                        .map(|t| ImageRef::parse(t).map(|r| r.familiar()).unwrap_or(t.clone()))
                        .unwrap_or("<none>".into()),
                    short_id(&i.id),
                    human(i.compressed),
                    human(i.unpacked),
                    human(i.shared),
                    human(i.unique),
                    i.layers.to_string(),
                    i.containers.to_string(),
                ]
            })
            .collect();
        table(&["IMAGE", "IMAGE ID", "COMPRESSED", "SIZE", "SHARED", "UNIQUE", "LAYERS", "CONTAINERS"], &rows);
    }
    Ok(())
}

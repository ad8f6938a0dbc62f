//! Berth's command line: parses arguments, talks to the daemon over its
//! unix socket, and prints for people (tables, progress bars) or for
//! scripts (`-o json`, exit codes).
//!
//! Exit codes: 0 success, 1 the operation failed, 2 bad usage, 3 the daemon
//! could not be reached.
//!
//! It must never touch the state root itself: every effect goes through the
//! daemon's API.

pub mod args;
pub mod client;
mod containers;
mod declared;
mod images;
mod networks;
mod output;
mod progress;
mod tty;

pub use args::{Cli, Command, DaemonArgs};
use client::{CliError, Client};

/// Runs a client command (everything but `daemon`). Returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    let client = Client::new(&cli.socket);
    let result = match cli.command {
        Command::Daemon(_) => Err(CliError::Other("the daemon command is run by the binary, not the client".into())),
        Command::Version { output } => images::version(&client, output).await,
        Command::Pull(a) => images::pull(&client, a).await,
        Command::Push(a) => images::push(&client, a).await,
        Command::Images(a) => images::list(&client, a).await,
        Command::Rmi(a) => images::remove(&client, a).await,
        Command::Tag { source, target } => images::tag(&client, &source, &target).await,
        Command::Image(cmd) => images::image(&client, cmd).await,
        Command::Login(a) => images::login(&client, a).await,
        Command::Logout { registry } => images::logout(&client, &registry).await,
        Command::System(args::SystemCommand::Df { verbose, output }) => {
            images::disk_usage(&client, verbose, output).await
        }
        Command::Network(cmd) => networks::network(&client, cmd).await,
        Command::Vip(cmd) => networks::vip(&client, cmd).await,
        Command::Create(a) => containers::create(&client, a).await,
        Command::Start { containers: c } => containers::start(&client, c).await,
        Command::Stop(a) => containers::stop(&client, a).await,
        Command::Restart(a) => containers::restart(&client, a).await,
        Command::Kill { signal, containers: c } => containers::kill(&client, signal, c).await,
        Command::Rm { force, containers: c } => containers::remove(&client, force, c).await,
        Command::Rename { container, new_name } => containers::rename(&client, &container, &new_name).await,
        Command::Ps(a) => containers::ps(&client, a).await,
        Command::Logs(a) => declared::logs(&client, a).await,
        Command::Inspect { name, output } => containers::inspect(&client, &name, output).await,
        Command::Stats { no_stream, output, containers: c } => containers::stats(&client, no_stream, output, c).await,
        Command::Top { container, ps_args } => containers::top(&client, &container, ps_args).await,
        Command::Events { since, until, filter, output } => {
            containers::events(&client, since, until, filter, output).await
        }
        Command::System(args::SystemCommand::Audit { since, limit, output }) => {
            containers::audit(&client, since, limit, output).await
        }
        Command::Apply(a) => declared::apply(&client, a).await,
        Command::Get(a) => declared::get(&client, a).await,
        Command::Describe(a) => declared::describe(&client, a).await,
        Command::Delete(a) => declared::delete(&client, a).await,
        Command::Scale(a) => declared::scale(&client, a).await,
        Command::Rollout(cmd) => declared::rollout(&client, cmd).await,
        Command::Shim(_) => Err(CliError::Other("the shim is run by the binary, not the client".into())),
        // These report the container's exit code as berth's own.
        Command::Run(a) => return finish(containers::run(&client, a).await),
        Command::Exec(a) => return finish(declared::exec(&client, a).await),
        Command::Wait { containers: c } => containers::wait(&client, c).await.map(|_| ()),
    };
    finish(result.map(|()| 0))
}

fn finish(result: Result<i32, CliError>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => {
            if !matches!(e, CliError::Silent) {
                eprintln!("berth: {e}");
            }
            e.exit_code()
        }
    }
}

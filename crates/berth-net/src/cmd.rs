//! Running a helper program (nft, conntrack), optionally inside a network
//! namespace via `nsenter --net=PATH`, with input on stdin.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Where and how to run a helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub program: PathBuf,
    /// A network namespace file (e.g. `/run/netns/NAME` or
    /// `/proc/PID/ns/net`); `None` runs in the caller's namespace.
    pub netns: Option<PathBuf>,
}

impl Invocation {
    pub fn new(program: impl Into<PathBuf>, netns: Option<PathBuf>) -> Self {
        Self { program: program.into(), netns }
    }

    /// The program name as shown in errors.
    pub fn describe(&self) -> String {
        match &self.netns {
            Some(ns) => format!("{} (in netns {})", self.program.display(), ns.display()),
            None => self.program.display().to_string(),
        }
    }

    fn command(&self) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg("--").arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        }
    }

    /// Runs to completion, feeding `stdin` if given; never inherits stdio.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> std::io::Result<Output> {
        let mut cmd = self.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn()?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A helper that exits early (bad option) closes its end; the
            // error then comes from its exit status and stderr, not EPIPE.
            let _ = pipe.write_all(input);
        }
        child.wait_with_output()
    }
}

/// Squeezes a tool's stderr into one line: trimmed lines, joined with " | ",
/// with nft's caret-marker lines dropped.
pub fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '^' || c == '~' || c.is_whitespace()))
        .collect();
    if lines.is_empty() {
        "(no error output)".to_string()
    } else {
        lines.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_becomes_one_line() {
        let nft = b"Error: No such file or directory\nlist table ip x\n           ^^^^^\n";
        assert_eq!(one_line(nft), "Error: No such file or directory | list table ip x");
        assert_eq!(one_line(b"\n"), "(no error output)");
    }

    #[test]
    fn netns_runs_through_nsenter() {
        let inv = Invocation::new("nft", Some(PathBuf::from("/run/netns/x")));
        let cmd = inv.command();
        assert_eq!(cmd.get_program(), "nsenter");
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["--net=/run/netns/x", "--", "nft"]);
        assert_eq!(inv.describe(), "nft (in netns /run/netns/x)");
    }
}

//! Showing pull and push progress: bars per blob on a terminal, plain lines
//! otherwise (logs, CI).

use std::collections::HashMap;
use std::io::IsTerminal;

use berth_core::api::ProgressEvent;
use berth_core::size::human;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Reporter {
    quiet: bool,
    bars: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    /// Last plain-text state printed per blob, so lines are not repeated.
    printed: HashMap<String, String>,
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

impl Reporter {
    pub fn new(quiet: bool) -> Self {
        let bars = (!quiet && std::io::stderr().is_terminal())
            .then(|| (MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), HashMap::new()));
        Self { quiet, bars, printed: HashMap::new() }
    }

    pub fn event(&mut self, e: &ProgressEvent) {
        if self.quiet {
            return;
        }
        match e {
            ProgressEvent::Source { registry, mirror } => {
                let what = if *mirror { "mirror" } else { "registry" };
                self.line(format!("Using {what} {registry}"));
            }
            ProgressEvent::Resolved { reference, digest, .. } => {
                self.line(format!("{reference}: resolved to {digest}"))
            }
            ProgressEvent::Warning { message } => self.line(format!("warning: {message}")),
            ProgressEvent::Blob(b) => {
                if let Some((multi, bars)) = &mut self.bars {
                    let bar = bars.entry(b.digest.clone()).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new(b.total));
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{prefix} {msg:11} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                            )
                            .expect("template is valid")
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(short(&b.digest).to_string());
                        bar
                    });
                    bar.set_length(b.total.max(1));
                    bar.set_position(b.current);
                    bar.set_message(b.state.clone());
                    if b.state == "done" || b.state == "exists" {
                        bar.finish();
                    }
                } else {
                    // Plain mode: one line per state change, not per chunk.
                    if self.printed.get(&b.digest) != Some(&b.state) && b.state != "waiting" {
                        self.printed.insert(b.digest.clone(), b.state.clone());
                        eprintln!("{}: {} {}", short(&b.digest), b.state, human(b.total));
                    }
                }
            }
            ProgressEvent::Done { .. } | ProgressEvent::Error { .. } => {
                if let Some((multi, _)) = &self.bars {
                    let _ = multi.clear();
                }
            }
        }
    }

    fn line(&self, s: String) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(s);
            }
            None => eprintln!("{s}"),
        }
    }
}

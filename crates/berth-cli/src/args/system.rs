//! The `system` noun group.

use super::*;

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show the audit log, newest first: every mutating API call and every
    /// read of a log, the events or a Secret; who made it, what was asked
    /// (redacted) and how it ended.
    Audit {
        /// Only calls since this time (RFC 3339, or a duration like 10m).
        #[arg(long)]
        since: Option<String>,
        /// The most entries to show.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Show disk usage, and what shared layers save.
    Df {
        /// One row per image with its shared and unique bytes.
        #[arg(short, long)]
        verbose: bool,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
}

//! The `network` and `vip` noun groups.

use super::*;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create {
        name: String,
        /// CIDR, e.g. 10.90.0.0/24 (default: the next free block of the pool).
        #[arg(long)]
        subnet: Option<String>,
        /// The bridge's address (default: the subnet's first host).
        #[arg(long)]
        gateway: Option<String>,
        /// No traffic in or out except from the host itself.
        #[arg(long)]
        internal: bool,
        #[arg(long)]
        mtu: Option<u32>,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Show a network and its containers.
    Inspect {
        name: String,
        #[arg(short, long, value_enum, default_value = "json")]
        output: Output,
    },
    /// Connect a running container to a network (one more interface).
    Connect {
        network: String,
        container: String,
        /// Another name for the container in this network's DNS (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
    },
    /// Disconnect a running container from a network.
    Disconnect { network: String, container: String },
    /// Remove networks no container uses.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum VipCommand {
    /// Create a VIP (no backends yet: connections are refused until set).
    Create {
        name: String,
        #[arg(long)]
        port: u16,
        /// Default: the next free address of the service range.
        #[arg(long)]
        ip: Option<String>,
        #[arg(long, default_value = "tcp")]
        protocol: String,
    },
    /// Replace the backends in one atomic change: IP:PORT=WEIGHT ..., weights summing to 100
    /// (none: no backend, connections are refused).
    Set { name: String, backends: Vec<String> },
    /// Show a VIP, its backends' weights and their connections (from conntrack).
    Show {
        name: String,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// List VIPs.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Remove VIPs.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

//! Networking vocabulary, pure: IPv4 blocks, published-port specs, address
//! management and weighted VIP backends.
//!
//! Nothing here touches the kernel; `berth-net` compiles these values into
//! nftables rules and the network plumbing applies them.

mod cidr;
mod ipam;
mod port;
mod weights;

pub use cidr::{CidrError, Ipv4Cidr};
pub use ipam::{check_subnet, default_subnet_pool, AddressPool, IpamError, SubnetPool};
pub use port::{check_bindings, pick_host_port, HostBinding, PortError, PortSpec, Protocol, DEFAULT_HOST_PORT_RANGE};
pub use weights::{Backend, WeightRange, Weights, WeightsError, TOTAL_WEIGHT};

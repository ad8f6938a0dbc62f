//! Weighted backends of a service VIP.
//!
//! Weights are whole percents: integers 0..=100 that sum to exactly 100, so
//! a canary can receive exactly 1 % of new connections. The data plane picks
//! a backend with `numgen random mod 100`; [`Weights::ranges`] turns the
//! weights into the contiguous slices of 0..100 that map to each backend. A
//! backend of weight 0 stays known (its established connections continue
//! and can be counted) but gets no slice. An empty set means "no backend":
//! the VIP refuses connections.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Weights are in percent of new connections.
pub const TOTAL_WEIGHT: u8 = 100;

/// One backend: where to send connections and what share of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u8,
}

impl Backend {
    pub fn socket(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.addr, self.port)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}={}", self.addr, self.port, self.weight)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    #[error("invalid backend {input:?}: {problem}; expected ADDRESS:PORT=WEIGHT, e.g. 10.0.0.5:8080=30")]
    Syntax { input: String, problem: String },
    #[error("backend {backend}: weight {} is above 100; weights are percents", backend.weight)]
    WeightTooLarge { backend: Backend },
    #[error("backend {backend}: port 0 is not a valid port; use 1-65535")]
    PortZero { backend: Backend },
    #[error("backend {addr}:{port} is listed twice; give each backend once")]
    Duplicate { addr: Ipv4Addr, port: u16 },
    #[error("backend weights sum to {sum}, not 100 ({listed}); adjust them so they add up to 100")]
    BadSum { sum: u32, listed: String },
    #[error("{count} backends cannot share 100 percent in whole percents; at most 100 backends are supported")]
    TooMany { count: usize },
}

impl FromStr for Backend {
    type Err = WeightsError;
    /// Parses `ADDRESS:PORT=WEIGHT`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let syntax = |problem: String| WeightsError::Syntax { input: input.to_string(), problem };
        let (target, weight) = input.split_once('=').ok_or_else(|| syntax("there is no '=WEIGHT'".into()))?;
        let socket: SocketAddrV4 =
            target.parse().map_err(|_| syntax(format!("{target:?} is not an IPv4 ADDRESS:PORT")))?;
        let weight: u8 = match weight.parse::<u32>() {
            Ok(w @ 0..=100) if weight.bytes().all(|b| b.is_ascii_digit()) => w as u8,
            _ => return Err(syntax(format!("weight {weight:?} is not a number from 0 to 100"))),
        };
        let backend = Backend { addr: *socket.ip(), port: socket.port(), weight };
        if backend.port == 0 {
            return Err(WeightsError::PortZero { backend });
        }
        Ok(backend)
    }
}

/// The slice `first..=last` of 0..100 that sends new connections to
/// `backends()[backend]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightRange {
    pub backend: usize,
    pub first: u8,
    pub last: u8,
}

/// A validated backend set. Invariant: empty, or weights 0..=100 summing to
/// 100 with every (addr, port) once. Order is kept as given, so the numgen
/// slices (and golden rulesets) are stable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<Backend>", into = "Vec<Backend>")]
pub struct Weights(Vec<Backend>);

impl Weights {
    pub fn try_new(backends: Vec<Backend>) -> Result<Self, WeightsError> {
        for (i, b) in backends.iter().enumerate() {
            if b.weight > TOTAL_WEIGHT {
                return Err(WeightsError::WeightTooLarge { backend: *b });
            }
            if b.port == 0 {
                return Err(WeightsError::PortZero { backend: *b });
            }
            if backends[..i].iter().any(|o| (o.addr, o.port) == (b.addr, b.port)) {
                return Err(WeightsError::Duplicate { addr: b.addr, port: b.port });
            }
        }
        let sum: u32 = backends.iter().map(|b| u32::from(b.weight)).sum();
        if !backends.is_empty() && sum != u32::from(TOTAL_WEIGHT) {
            let listed = backends.iter().map(Backend::to_string).collect::<Vec<_>>().join(", ");
            return Err(WeightsError::BadSum { sum, listed });
        }
        Ok(Self(backends))
    }

    /// No backend: the VIP rejects connections.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Parses the CLI form, one `ADDRESS:PORT=WEIGHT` per item.
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, WeightsError> {
        Self::try_new(items.into_iter().map(str::parse).collect::<Result<_, _>>()?)
    }

    /// Spreads 100 as evenly as possible over the given targets (the first
    /// ones get one percent more when it does not divide).
    pub fn equal(targets: &[SocketAddrV4]) -> Result<Self, WeightsError> {
        if targets.len() > usize::from(TOTAL_WEIGHT) {
            return Err(WeightsError::TooMany { count: targets.len() });
        }
        let n = targets.len().max(1);
        let (base, extra) = (usize::from(TOTAL_WEIGHT) / n, usize::from(TOTAL_WEIGHT) % n);
        let backends = targets
            .iter()
            .enumerate()
            .map(|(i, t)| Backend { addr: *t.ip(), port: t.port(), weight: (base + usize::from(i < extra)) as u8 })
            .collect();
        Self::try_new(backends)
    }

    /// Splits 100 between two groups of targets, `canary` getting
    /// `canary_share` percent (a canary's traffic weight) and `stable` the
    /// rest, each group's share spread evenly over its members (the first
    /// ones getting one percent more when it does not divide). A group with
    /// no member gives its share to the other, so no share goes nowhere.
    pub fn split(stable: &[SocketAddrV4], canary: &[SocketAddrV4], canary_share: u8) -> Result<Self, WeightsError> {
        if stable.len() + canary.len() > usize::from(TOTAL_WEIGHT) {
            return Err(WeightsError::TooMany { count: stable.len() + canary.len() });
        }
        let canary_share = canary_share.min(TOTAL_WEIGHT);
        let (stable_share, canary_share) = match (stable.is_empty(), canary.is_empty()) {
            (true, _) => (0, TOTAL_WEIGHT),
            (_, true) => (TOTAL_WEIGHT, 0),
            _ => (TOTAL_WEIGHT - canary_share, canary_share),
        };
        let spread = |targets: &[SocketAddrV4], share: u8| -> Vec<Backend> {
            let n = targets.len().max(1);
            let (base, extra) = (usize::from(share) / n, usize::from(share) % n);
            targets
                .iter()
                .enumerate()
                .map(|(i, t)| Backend { addr: *t.ip(), port: t.port(), weight: (base + usize::from(i < extra)) as u8 })
                .collect()
        };
        let mut backends = spread(stable, stable_share);
        backends.extend(spread(canary, canary_share));
        Self::try_new(backends)
    }

    pub fn backends(&self) -> &[Backend] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any backend gets new connections (false when empty).
    pub fn has_ready_backend(&self) -> bool {
        self.0.iter().any(|b| b.weight > 0)
    }

    /// Contiguous slices of 0..100 in backend order; weight-0 backends get
    /// none. The slices partition 0..100 exactly (or are empty for an empty
    /// set), and each slice's size is its backend's weight.
    pub fn ranges(&self) -> Vec<WeightRange> {
        let mut next: u8 = 0;
        let mut out = Vec::new();
        for (i, b) in self.0.iter().enumerate() {
            if b.weight == 0 {
                continue;
            }
            out.push(WeightRange { backend: i, first: next, last: next + b.weight - 1 });
            next += b.weight;
        }
        out
    }
}

impl TryFrom<Vec<Backend>> for Weights {
    type Error = WeightsError;
    fn try_from(v: Vec<Backend>) -> Result<Self, Self::Error> {
        Self::try_new(v)
    }
}

impl From<Weights> for Vec<Backend> {
    fn from(w: Weights) -> Self {
        w.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn targets(n: u8, third: u8) -> Vec<SocketAddrV4> {
        (0..n).map(|i| SocketAddrV4::new(std::net::Ipv4Addr::new(10, 0, third, i + 2), 80)).collect()
    }

    #[test]
    fn a_split_gives_each_group_its_share_exactly() {
        let w = Weights::split(&targets(3, 0), &targets(2, 1), 1).unwrap();
        let weights: Vec<u8> = w.backends().iter().map(|b| b.weight).collect();
        assert_eq!(weights, vec![33, 33, 33, 1, 0]);
        let w = Weights::split(&targets(4, 0), &targets(1, 1), 20).unwrap();
        assert_eq!(w.backends().iter().map(|b| b.weight).collect::<Vec<_>>(), vec![20, 20, 20, 20, 20]);
        // No canary pod: everything stays on stable; no stable: all canary.
        let w = Weights::split(&targets(2, 0), &[], 50).unwrap();
        assert_eq!(w.backends().iter().map(|b| b.weight).collect::<Vec<_>>(), vec![50, 50]);
        let w = Weights::split(&[], &targets(2, 1), 10).unwrap();
        assert_eq!(w.backends().iter().map(|b| b.weight).collect::<Vec<_>>(), vec![50, 50]);
        assert!(Weights::split(&[], &[], 10).unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn splits_always_sum_to_100_with_the_canary_share(stable in 1u8..20, canary in 1u8..20, share in 0u8..=100) {
            let w = Weights::split(&targets(stable, 0), &targets(canary, 1), share).unwrap();
            let total: u32 = w.backends().iter().map(|b| u32::from(b.weight)).sum();
            prop_assert_eq!(total, 100);
            let to_canary: u32 = w.backends()[usize::from(stable)..].iter().map(|b| u32::from(b.weight)).sum();
            prop_assert_eq!(to_canary, u32::from(share));
        }
    }

    fn w(items: &[&str]) -> Result<Weights, WeightsError> {
        Weights::parse(items.iter().copied())
    }

    #[test]
    fn parses_the_cli_form() {
        let b: Backend = "10.0.0.5:8080=30".parse().unwrap();
        assert_eq!(b, Backend { addr: Ipv4Addr::new(10, 0, 0, 5), port: 8080, weight: 30 });
        assert_eq!(b.to_string(), "10.0.0.5:8080=30");
        for (input, needle) in [
            ("10.0.0.5:8080", "there is no '=WEIGHT'"),
            ("10.0.0.5=30", "\"10.0.0.5\" is not an IPv4 ADDRESS:PORT"),
            ("10.0.0.5:8080=101", "weight \"101\" is not a number from 0 to 100"),
            ("10.0.0.5:8080=-1", "weight \"-1\""),
            ("10.0.0.5:8080=+5", "weight \"+5\""),
        ] {
            let e = input.parse::<Backend>().unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("expected ADDRESS:PORT=WEIGHT"), "{input}: {e}");
        }
        assert!(matches!("10.0.0.5:0=5".parse::<Backend>(), Err(WeightsError::PortZero { .. })));
    }

    #[test]
    fn weights_must_sum_to_100() {
        assert!(w(&["10.0.0.5:80=50", "10.0.0.6:80=50"]).is_ok());
        assert!(w(&[]).unwrap().is_empty());
        let e = w(&["10.0.0.5:80=30", "10.0.0.6:80=60"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "backend weights sum to 90, not 100 (10.0.0.5:80=30, 10.0.0.6:80=60); adjust them so they add up to 100"
        );
        assert!(matches!(w(&["10.0.0.5:80=0"]), Err(WeightsError::BadSum { sum: 0, .. })));
        let dup = w(&["10.0.0.5:80=50", "10.0.0.5:80=50"]).unwrap_err();
        assert_eq!(dup.to_string(), "backend 10.0.0.5:80 is listed twice; give each backend once");
        let big = Weights::try_new(vec![Backend { addr: Ipv4Addr::LOCALHOST, port: 1, weight: 200 }]).unwrap_err();
        assert!(big.to_string().contains("weight 200 is above 100"));
    }

    #[test]
    fn ranges_follow_the_weights() {
        let one = w(&["10.0.0.5:80=1", "10.0.0.6:80=99"]).unwrap();
        assert_eq!(
            one.ranges(),
            vec![WeightRange { backend: 0, first: 0, last: 0 }, WeightRange { backend: 1, first: 1, last: 99 }]
        );
        let zero = w(&["10.0.0.5:80=0", "10.0.0.6:80=100"]).unwrap();
        assert_eq!(zero.ranges(), vec![WeightRange { backend: 1, first: 0, last: 99 }]);
        assert!(zero.has_ready_backend());
        assert!(Weights::none().ranges().is_empty());
        assert!(!Weights::none().has_ready_backend());
    }

    #[test]
    fn equal_split() {
        let t = |n: u8| SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, n), 80);
        let three = Weights::equal(&[t(1), t(2), t(3)]).unwrap();
        let got: Vec<u8> = three.backends().iter().map(|b| b.weight).collect();
        assert_eq!(got, vec![34, 33, 33]);
        assert!(Weights::equal(&[]).unwrap().is_empty());
        let many: Vec<_> = (0..101u16).map(|i| SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1000 + i)).collect();
        assert!(matches!(Weights::equal(&many), Err(WeightsError::TooMany { count: 101 })));
    }

    #[test]
    fn serde_is_a_validated_list() {
        let ws = w(&["10.0.0.5:80=40", "10.0.0.6:80=60"]).unwrap();
        let json = serde_json::to_string(&ws).unwrap();
        assert_eq!(json, r#"[{"addr":"10.0.0.5","port":80,"weight":40},{"addr":"10.0.0.6","port":80,"weight":60}]"#);
        assert_eq!(serde_json::from_str::<Weights>(&json).unwrap(), ws);
        assert!(serde_json::from_str::<Weights>(r#"[{"addr":"10.0.0.5","port":80,"weight":40}]"#).is_err());
    }

    /// Random weights that sum to 100, zeros included, as cut points.
    fn arb_weights() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..=100, 0..12).prop_map(|mut cuts| {
            cuts.sort_unstable();
            let mut prev = 0;
            let mut ws: Vec<u8> = cuts
                .iter()
                .map(|&c| {
                    let w = c - prev;
                    prev = c;
                    w
                })
                .collect();
            ws.push(100 - prev);
            ws
        })
    }

    proptest! {
        #[test]
        fn ranges_partition_0_to_100(weights in arb_weights()) {
            let backends = weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| Backend { addr: Ipv4Addr::new(10, 0, 0, i as u8), port: 80, weight })
                .collect();
            let ws = Weights::try_new(backends).unwrap();
            let ranges = ws.ranges();
            let mut next = 0u32;
            for r in &ranges {
                prop_assert_eq!(u32::from(r.first), next, "contiguous");
                prop_assert!(r.last >= r.first);
                prop_assert_eq!(u32::from(r.last - r.first) + 1, u32::from(ws.backends()[r.backend].weight));
                next = u32::from(r.last) + 1;
            }
            prop_assert_eq!(next, 100);
            let with_share = weights.iter().filter(|&&w| w > 0).count();
            prop_assert_eq!(ranges.len(), with_share);
        }

        #[test]
        fn backend_display_parse_round_trip(a in any::<u32>(), port in 1u16.., weight in 0u8..=100) {
            let b = Backend { addr: Ipv4Addr::from(a), port, weight };
            prop_assert_eq!(b.to_string().parse::<Backend>().unwrap(), b);
        }
    }
}

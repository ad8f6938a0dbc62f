//! [`FakeNetLinks`]: records calls and keeps the links it would have made,
//! following the same rules as the real implementation (a missing bridge
//! refuses an attach, deletes of missing links succeed, a veth name is
//! replaced on re-attach).

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;

use berth_core::net::Ipv4Cidr;

use super::{check_ifname, sysctl_path, Attached, Attachment, BridgeSpec, LinkError, MacAddr, NetLinks};

/// One call to [`FakeNetLinks`], in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkCall {
    EnsureBridge(BridgeSpec),
    DeleteBridge(String),
    EnsureVipRoute { bridge: String, cidr: Ipv4Cidr },
    Attach(Attachment),
    Detach(String),
    SetSysctl { key: String, value: String },
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<LinkCall>,
    bridges: BTreeMap<String, Option<BridgeSpec>>,
    vip_routes: BTreeMap<String, Ipv4Cidr>,
    veths: BTreeMap<String, Attachment>,
    sysctls: BTreeMap<String, String>,
    fail_next: Option<i32>,
}

#[derive(Debug, Default)]
pub struct FakeNetLinks {
    state: Mutex<State>,
}

impl FakeNetLinks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn calls(&self) -> Vec<LinkCall> {
        self.lock().calls.clone()
    }

    /// The next call fails as if the kernel answered with `errno` (e.g.
    /// 1 for EPERM), changing nothing.
    pub fn fail_next(&self, errno: i32) {
        self.lock().fail_next = Some(errno);
    }

    /// Names of the bridges that exist (network and VIP bridges).
    pub fn bridges(&self) -> Vec<String> {
        self.lock().bridges.keys().cloned().collect()
    }

    /// Host-side names of the veth pairs that exist.
    pub fn veths(&self) -> Vec<String> {
        self.lock().veths.keys().cloned().collect()
    }

    /// The value set for `key`, given as a path or dotted
    /// (`net.ipv4.ip_forward`), as `set_sysctl` takes it.
    pub fn sysctl(&self, key: &str) -> Option<String> {
        self.lock().sysctls.get(&sysctl_path(key).ok()?).cloned()
    }

    pub fn vip_route(&self, bridge: &str) -> Option<Ipv4Cidr> {
        self.lock().vip_routes.get(bridge).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake lock")
    }
}

impl State {
    fn record(&mut self, call: LinkCall, action: impl FnOnce() -> String) -> Result<(), LinkError> {
        self.calls.push(call);
        match self.fail_next.take() {
            Some(errno) => {
                Err(LinkError::Netlink { action: action(), source: io::Error::from_raw_os_error(errno), detail: None })
            }
            None => Ok(()),
        }
    }

    fn remove_veths_on(&mut self, bridge: &str) {
        // A deleted bridge frees its ports; the fake forgets them so an
        // attach to a re-made bridge starts clean.
        self.veths.retain(|_, a| a.bridge != bridge);
    }
}

impl NetLinks for FakeNetLinks {
    fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<(), LinkError> {
        let mut st = self.lock();
        st.record(LinkCall::EnsureBridge(spec.clone()), || format!("create bridge {}", spec.name))?;
        spec.check()?;
        st.bridges.insert(spec.name.clone(), Some(spec.clone()));
        st.sysctls.insert(format!("net/ipv4/conf/{}/route_localnet", spec.name), "1".into());
        Ok(())
    }

    fn delete_bridge(&self, name: &str) -> Result<(), LinkError> {
        let mut st = self.lock();
        st.record(LinkCall::DeleteBridge(name.into()), || format!("delete bridge {name}"))?;
        check_ifname("bridge", name)?;
        st.bridges.remove(name);
        st.vip_routes.remove(name);
        st.remove_veths_on(name);
        Ok(())
    }

    fn ensure_vip_route(&self, bridge: &str, cidr: Ipv4Cidr) -> Result<(), LinkError> {
        let mut st = self.lock();
        st.record(LinkCall::EnsureVipRoute { bridge: bridge.into(), cidr }, || format!("route {cidr} to {bridge}"))?;
        check_ifname("VIP bridge", bridge)?;
        st.bridges.entry(bridge.into()).or_insert(None);
        st.vip_routes.insert(bridge.into(), cidr);
        Ok(())
    }

    fn attach(&self, a: &Attachment) -> Result<Attached, LinkError> {
        let mut st = self.lock();
        st.record(LinkCall::Attach(a.clone()), || format!("create veth {}", a.host_ifname))?;
        a.check()?;
        if !st.bridges.contains_key(&a.bridge) {
            return Err(LinkError::NoBridge { bridge: a.bridge.clone() });
        }
        // As in the kernel: one name per namespace, one default route.
        let others = st.veths.values().filter(|o| o.netns == a.netns && o.host_ifname != a.host_ifname);
        for other in others {
            let detail = if other.container_ifname == a.container_ifname {
                format!("{} already exists in {}", a.container_ifname, a.netns.display())
            } else if other.gateway.is_some() && a.gateway.is_some() {
                "the namespace has a default route already".to_string()
            } else {
                continue;
            };
            return Err(LinkError::Netlink {
                action: format!("create veth {}", a.host_ifname),
                source: io::Error::from_raw_os_error(17),
                detail: Some(detail),
            });
        }
        st.veths.insert(a.host_ifname.clone(), a.clone());
        let mac = a.mac.unwrap_or_else(|| MacAddr::derived(&["fake", &a.host_ifname]));
        Ok(Attached { mac })
    }

    fn detach(&self, host_ifname: &str) -> Result<(), LinkError> {
        let mut st = self.lock();
        st.record(LinkCall::Detach(host_ifname.into()), || format!("delete veth {host_ifname}"))?;
        check_ifname("host-side veth", host_ifname)?;
        st.veths.remove(host_ifname);
        Ok(())
    }

    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), LinkError> {
        let mut st = self.lock();
        st.record(LinkCall::SetSysctl { key: key.into(), value: value.into() }, || format!("set {key}"))?;
        let path = sysctl_path(key)?;
        st.sysctls.insert(path, value.into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BridgeSpec {
        BridgeSpec {
            name: "bt-br0".into(),
            gateway: "10.89.0.1".parse().unwrap(),
            subnet: "10.89.0.0/24".parse().unwrap(),
            mtu: Some(1500),
        }
    }

    fn attachment(host: &str) -> Attachment {
        Attachment {
            netns: "/run/netns/c1".into(),
            bridge: "bt-br0".into(),
            host_ifname: host.into(),
            container_ifname: "eth0".into(),
            address: "10.89.0.2".parse().unwrap(),
            subnet: "10.89.0.0/24".parse().unwrap(),
            gateway: Some("10.89.0.1".parse().unwrap()),
            mtu: Some(1500),
            mac: None,
        }
    }

    #[test]
    fn records_calls_and_state() {
        let links = FakeNetLinks::new();
        assert!(matches!(links.attach(&attachment("v1")), Err(LinkError::NoBridge { .. })));
        links.ensure_bridge(&spec()).unwrap();
        links.ensure_bridge(&spec()).unwrap();
        let attached = links.attach(&attachment("v1")).unwrap();
        assert_eq!(attached, links.attach(&attachment("v1")).unwrap(), "re-attach replaces, same MAC");
        links.ensure_vip_route("bt-vip", "10.96.0.0/16".parse().unwrap()).unwrap();
        links.set_sysctl("net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(links.veths(), ["v1"]);
        assert_eq!(links.bridges(), ["bt-br0", "bt-vip"]);
        assert_eq!(links.sysctl("net/ipv4/ip_forward").as_deref(), Some("1"));
        assert_eq!(links.sysctl("net/ipv4/conf/bt-br0/route_localnet").as_deref(), Some("1"));
        links.detach("v1").unwrap();
        links.detach("v1").unwrap();
        links.delete_bridge("bt-vip").unwrap();
        assert!(links.veths().is_empty());
        assert_eq!(links.vip_route("bt-vip"), None);
        assert_eq!(links.calls().len(), 10);
        assert_eq!(links.calls()[0], LinkCall::Attach(attachment("v1")));
    }

    #[test]
    fn clashes_inside_a_namespace_are_refused_like_the_kernel_does() {
        let links = FakeNetLinks::new();
        links.ensure_bridge(&spec()).unwrap();
        links.attach(&attachment("v1")).unwrap();
        let same_name = Attachment { gateway: None, ..attachment("v2") };
        assert!(links.attach(&same_name).unwrap_err().to_string().contains("eth0 already exists"));
        let second_default = Attachment { container_ifname: "eth1".into(), ..attachment("v2") };
        assert!(links.attach(&second_default).unwrap_err().to_string().contains("default route already"));
        let fine = Attachment { gateway: None, ..second_default };
        links.attach(&fine).unwrap();
        assert_eq!(links.veths(), ["v1", "v2"]);
    }

    #[test]
    fn fail_next_fails_once_and_changes_nothing() {
        let links = FakeNetLinks::new();
        links.fail_next(1);
        let err = links.ensure_bridge(&spec()).unwrap_err().to_string();
        assert!(err.contains("cannot create bridge bt-br0") && err.contains("root"), "{err}");
        assert!(links.bridges().is_empty());
        links.ensure_bridge(&spec()).unwrap();
        assert_eq!(links.bridges(), ["bt-br0"]);
    }
}

//! `v1 Service`: ClusterIP (a VIP from berth's range) and NodePort (a port
//! published on the host).

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::container::{port_number, protocol};
use super::meta::{labels, object_meta, NameRule};
use super::Report;
use crate::model::{ClusterIp, ServicePort, ServiceSpec, ServiceType, TargetPort};
use crate::names;
use crate::path::FieldPath;

pub(super) fn service(s: &Service, report: &mut Report<'_>) -> Option<ServiceSpec> {
    let meta = object_meta(&s.metadata, NameRule::Dns1035Label, report);
    let path = FieldPath::of(&["spec"]);
    let Some(spec) = &s.spec else {
        report.invalid(&path, "the Service has no spec", "add a spec with selector and ports");
        return None;
    };
    let service_type = match spec.type_.as_deref() {
        None | Some("ClusterIP") => ServiceType::ClusterIp,
        Some("NodePort") => ServiceType::NodePort,
        Some(other @ ("LoadBalancer" | "ExternalName")) => {
            report.invalid(
                &path.field("type"),
                format!("{other} is not supported by berth"),
                "use ClusterIP or NodePort",
            );
            ServiceType::ClusterIp
        }
        Some(other) => {
            report.invalid(
                &path.field("type"),
                format!("{other:?} is not a Service type"),
                "use ClusterIP or NodePort",
            );
            ServiceType::ClusterIp
        }
    };
    let ip_path = path.field("clusterIP");
    let cluster_ip = match spec.cluster_ip.as_deref() {
        None | Some("") => ClusterIp::Auto,
        Some("None") => ClusterIp::Headless,
        Some(text) => match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) if ip != Ipv4Addr::UNSPECIFIED => ClusterIp::Fixed(ip),
            Ok(IpAddr::V6(_)) => {
                report.invalid(
                    &ip_path,
                    format!("{text} is an IPv6 address; berth's service addresses are IPv4"),
                    "leave clusterIP out to get one",
                );
                ClusterIp::Auto
            }
            _ => {
                report.invalid(
                    &ip_path,
                    format!("{text:?} is not an IPv4 address"),
                    "give an address in berth's service range, None, or leave it out",
                );
                ClusterIp::Auto
            }
        },
    };
    if cluster_ip == ClusterIp::Headless && service_type == ServiceType::NodePort {
        report.invalid(&ip_path, "a NodePort Service cannot be headless", "drop clusterIP: None or use type ClusterIP");
    }
    let selector_path = path.field("selector");
    let selector = labels(&selector_path, spec.selector.as_ref(), report);
    if selector.is_empty() {
        report.invalid(
            &selector_path,
            "the Service selects no pods (berth has no Endpoints objects to fill it by hand)",
            "add a selector matching the pods' labels, e.g. app: web",
        );
    }
    let ports = ports(&path.field("ports"), spec.ports.as_deref().unwrap_or_default(), service_type, report);
    if ports.is_empty() && cluster_ip != ClusterIp::Headless {
        report.invalid(&path.field("ports"), "the Service has no ports", "declare at least one port");
    }
    Some(ServiceSpec { meta, service_type, selector, ports, cluster_ip })
}

fn ports(
    path: &FieldPath,
    list: &[k8s_openapi::api::core::v1::ServicePort],
    service_type: ServiceType,
    report: &mut Report<'_>,
) -> Vec<ServicePort> {
    let mut out: Vec<ServicePort> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = path.index(i);
        let port = port_number(&at.field("port"), p.port, report);
        let protocol = protocol(&at.field("protocol"), p.protocol.as_deref(), report);
        match &p.name {
            Some(name) => {
                if let Err(why) = names::dns1123_label(name) {
                    report.invalid(&at.field("name"), why, "rename the port");
                }
                if out.iter().any(|o| o.name.as_ref() == Some(name)) {
                    report.invalid(
                        &at.field("name"),
                        format!("another port is also named {name:?}"),
                        "give each port its own name",
                    );
                }
            }
            None if list.len() > 1 => {
                report.invalid(
                    &at.field("name"),
                    "a Service with several ports must name each of them",
                    "add a name, e.g. http",
                );
            }
            None => {}
        }
        if port != 0 && out.iter().any(|o| o.port == port && o.protocol == protocol) {
            report.invalid(&at.field("port"), format!("port {port} is declared twice"), "declare each port once");
        }
        let target_port = match &p.target_port {
            None => TargetPort::Number(port),
            Some(IntOrString::Int(n)) => TargetPort::Number(port_number(&at.field("targetPort"), *n, report)),
            Some(IntOrString::String(name)) => {
                if let Err(why) = names::iana_svc_name(name) {
                    report.invalid(&at.field("targetPort"), why, "give a container port number or name");
                }
                TargetPort::Name(name.clone())
            }
        };
        let node_port = match (p.node_port, service_type) {
            (None, _) => None,
            (Some(n), ServiceType::NodePort) => {
                let n = port_number(&at.field("nodePort"), n, report);
                if n != 0 && out.iter().any(|o| o.node_port == Some(n)) {
                    report.invalid(
                        &at.field("nodePort"),
                        format!("nodePort {n} is used twice"),
                        "give each port its own nodePort",
                    );
                }
                Some(n)
            }
            (Some(_), ServiceType::ClusterIp) => {
                report.invalid(
                    &at.field("nodePort"),
                    "nodePort only applies to type NodePort",
                    "remove it or set type: NodePort",
                );
                None
            }
        };
        out.push(ServicePort { name: p.name.clone(), port, target_port, protocol, node_port });
    }
    out
}

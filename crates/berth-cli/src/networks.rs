//! `berth network ...` and `berth vip ...`.

use berth_core::api::{
    ContainerInspect, NetworkConnectRequest, NetworkCreateRequest, NetworkInspect, VipBackendsRequest,
    VipCreateRequest, VipInspect,
};

use crate::args::{NetworkCommand, VipCommand};
use crate::client::{segment, Client, Result};
use crate::output::{structured, table};

pub async fn network(client: &Client, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create { name, subnet, gateway, internal, mtu } => {
            let req = NetworkCreateRequest { name, subnet, gateway, internal, mtu };
            let n: NetworkInspect = client.post("/v1/networks", &req).await?;
            println!("{} {} gateway {}", n.name, n.subnet, n.gateway);
            Ok(())
        }
        NetworkCommand::Ls { output } => {
            let all: Vec<NetworkInspect> = client.get("/v1/networks").await?;
            if structured(&all, output)? {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|n| {
                    vec![
                        n.name.clone(),
                        n.subnet.clone(),
                        n.gateway.clone(),
                        n.bridge.clone(),
                        if n.internal { "internal".into() } else { "bridge".into() },
                        n.containers.len().to_string(),
                    ]
                })
                .collect();
            table(&["NAME", "SUBNET", "GATEWAY", "BRIDGE", "KIND", "CONTAINERS"], &rows);
            Ok(())
        }
        NetworkCommand::Inspect { name, output } => {
            let n: NetworkInspect = client.get(&format!("/v1/networks/{}", segment(&name))).await?;
            if !structured(&n, output)? {
                structured(&n, crate::args::Output::Json)?;
            }
            Ok(())
        }
        NetworkCommand::Connect { network, container, aliases } => {
            let path = format!("/v1/networks/{}/connect", segment(&network));
            let c: ContainerInspect = client.post(&path, &NetworkConnectRequest { container, aliases }).await?;
            let a = c.network.networks.iter().find(|a| a.network == network);
            println!("{} {} {}", c.summary.name, network, a.map(|a| a.ip.as_str()).unwrap_or(""));
            Ok(())
        }
        NetworkCommand::Disconnect { network, container } => {
            let path = format!("/v1/networks/{}/disconnect", segment(&network));
            let c: ContainerInspect = client.post(&path, &NetworkConnectRequest { container, aliases: vec![] }).await?;
            println!("{} {}", c.summary.name, network);
            Ok(())
        }
        NetworkCommand::Rm { names } => {
            crate::containers::for_each(&names, |n| async move {
                client.delete_empty(&format!("/v1/networks/{}", segment(&n))).await
            })
            .await
        }
    }
}

fn print_vip(v: &VipInspect) {
    println!("{} {}:{}/{}", v.name, v.ip, v.port, v.protocol);
    let rows: Vec<Vec<String>> = v
        .backends
        .iter()
        .map(|b| {
            vec![
                format!("{}:{}", b.ip, b.port),
                format!("{}%", b.weight),
                b.established.to_string(),
                b.active.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no backends: connections are refused");
    } else {
        table(&["BACKEND", "WEIGHT", "ESTABLISHED", "ACTIVE"], &rows);
    }
}

pub async fn vip(client: &Client, cmd: VipCommand) -> Result<()> {
    match cmd {
        VipCommand::Create { name, port, ip, protocol } => {
            let req = VipCreateRequest { name, port, ip, protocol: Some(protocol) };
            let v: VipInspect = client.post("/v1/vips", &req).await?;
            println!("{} {}:{}/{}", v.name, v.ip, v.port, v.protocol);
            Ok(())
        }
        VipCommand::Set { name, backends } => {
            let v: VipInspect =
                client.put(&format!("/v1/vips/{}/backends", segment(&name)), &VipBackendsRequest { backends }).await?;
            print_vip(&v);
            Ok(())
        }
        VipCommand::Show { name, output } => {
            let v: VipInspect = client.get(&format!("/v1/vips/{}", segment(&name))).await?;
            if !structured(&v, output)? {
                print_vip(&v);
            }
            Ok(())
        }
        VipCommand::Ls { output } => {
            let all: Vec<VipInspect> = client.get("/v1/vips").await?;
            if structured(&all, output)? {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|v| {
                    vec![v.name.clone(), format!("{}:{}/{}", v.ip, v.port, v.protocol), v.backends.len().to_string()]
                })
                .collect();
            table(&["NAME", "ADDRESS", "BACKENDS"], &rows);
            Ok(())
        }
        VipCommand::Rm { names } => {
            crate::containers::for_each(&names, |n| async move {
                client.delete_empty(&format!("/v1/vips/{}", segment(&n))).await
            })
            .await
        }
    }
}

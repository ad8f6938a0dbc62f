use std::convert::Infallible;

use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};

use super::*;

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Serves HTTP/1 on loopback with `answer`; returns the port.
async fn http_server(answer: fn(&Request<Incoming>) -> (u16, u64)) -> u16 {
    let listener = tokio::net::TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    let (status, delay_ms) = answer(&req);
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    let resp = Response::builder().status(status).body(Full::new(Bytes::from_static(b"x"))).unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

fn get(path: &str, port: u16, headers: &[(&str, &str)]) -> HttpGet {
    HttpGet {
        path: path.into(),
        port,
        scheme: Scheme::Http,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

#[tokio::test]
async fn http_probes_follow_kubernetes_status_rules() {
    let port = http_server(|req| match req.uri().path() {
        "/ok" => (200, 0),
        "/moved" => (302, 0),
        "/header" if req.headers().get("x-probe").is_some_and(|v| v == "yes") => (204, 0),
        "/header" => (400, 0),
        "/slow" => (200, 3000),
        _ => (500, 0),
    })
    .await;
    let second = Duration::from_secs(1);
    assert_eq!(http_get(LOCAL, &get("/ok", port, &[]), second).await.0, ProbeResult::Success);
    assert_eq!(http_get(LOCAL, &get("moved", port, &[]), second).await.0, ProbeResult::Success);
    assert_eq!(http_get(LOCAL, &get("/header", port, &[("X-Probe", "yes")]), second).await.0, ProbeResult::Success);
    let (r, why) = http_get(LOCAL, &get("/header", port, &[]), second).await;
    assert_eq!(r, ProbeResult::Failure);
    assert!(why.contains("400"), "{why}");
    let (r, why) = http_get(LOCAL, &get("/broken", port, &[]), second).await;
    assert_eq!((r, why.contains("500")), (ProbeResult::Failure, true), "{why}");
    let (r, _) = http_get(LOCAL, &get("/slow", port, &[]), Duration::from_millis(200)).await;
    assert_eq!(r, ProbeResult::Timeout);
}

#[tokio::test]
async fn tcp_probes_need_a_listener() {
    let listener = tokio::net::TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(tcp(LOCAL, port).await.0, ProbeResult::Success);
    drop(listener);
    let (r, why) = tcp(LOCAL, port).await;
    assert_eq!(r, ProbeResult::Failure);
    assert!(why.contains(&port.to_string()), "{why}");
}

/// A gRPC health server answering `status` (with grpc-status 0), or a
/// non-zero grpc-status when `status` is None.
async fn grpc_server(status: Option<u8>) -> u16 {
    let listener = tokio::net::TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                    assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(body[0], 0, "uncompressed message");
                    let mut trailers = hyper::HeaderMap::new();
                    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = Vec::new();
                    match status {
                        Some(s) => {
                            frames.push(Ok(Frame::data(Bytes::from(vec![0, 0, 0, 0, 2, 0x08, s]))));
                            trailers.insert("grpc-status", "0".parse().unwrap());
                        }
                        None => {
                            trailers.insert("grpc-status", "5".parse().unwrap());
                        }
                    }
                    frames.push(Ok(Frame::trailers(trailers)));
                    let resp = Response::builder()
                        .header("content-type", "application/grpc")
                        .body(StreamBody::new(futures::stream::iter(frames)))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn grpc_probes_use_the_standard_health_check() {
    assert_eq!(grpc(LOCAL, grpc_server(Some(1)).await, "").await.0, ProbeResult::Success);
    let (r, why) = grpc(LOCAL, grpc_server(Some(2)).await, "shop").await;
    assert_eq!(r, ProbeResult::Failure);
    assert!(why.contains("not serving"), "{why}");
    let (r, why) = grpc(LOCAL, grpc_server(None).await, "").await;
    assert_eq!(r, ProbeResult::Failure);
    assert!(why.contains("status code 5"), "{why}");
}

#[test]
fn health_messages_encode_and_decode() {
    assert_eq!(health_request(""), [0, 0, 0, 0, 0]);
    assert_eq!(health_request("shop"), [0, 0, 0, 0, 6, 0x0a, 4, b's', b'h', b'o', b'p']);
    assert_eq!(health_status(&[0, 0, 0, 0, 2, 0x08, 1]), Some(1));
    // An empty message is the default: UNKNOWN.
    assert_eq!(health_status(&[0, 0, 0, 0, 0]), Some(0));
    assert_eq!(health_status(&[0, 0, 0, 0, 9]), None);
    let mut long = Vec::new();
    put_varint(&mut long, 300);
    assert_eq!(varint(&long), Some((300, &[][..])));
}

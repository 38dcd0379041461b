//! The admin API (hyper 1, HTTP/1.1): `GET /` (the status page), `GET /v1/stats` (JSON),
//! `GET /metrics` (Prometheus text), `PATCH /v1/groups/{name}`, `POST /v1/reload`,
//! `POST /v1/drain`.
//!
//! Security, checked in this order for every request, each refusal a 4xx with a one-line
//! reason and nothing changed:
//! 1. an `Origin` header → 403 (a browser page from elsewhere: CSRF);
//! 2. a `Host` that is not loopback (or the admin's own address) → 403 (DNS rebinding);
//! 3. mutations (`PATCH`, `POST`): no token configured → 403, a missing or wrong
//!    `Authorization: Bearer` token → 401 (compared in constant time), a `Content-Type` other
//!    than `application/json` → 415, a body over 64 KiB → 413, JSON that does not parse or has
//!    unknown fields or bad values → 400, an unknown group → 404.
//!
//! At most 64 admin connections at once, 5 s to send the headers.

use core::convert::Infallible;
use core::net::{IpAddr, SocketAddr};
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use alloc::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use super::state::{rate_json, Dir, GroupPatch};
use super::Proxy;

/// The largest request body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;
const MAX_CONNS: usize = 64;
const STATUS_PAGE: &str = include_str!("status.html");

type Resp = Response<Full<Bytes>>;

/// Serves the admin API on `sock` until the process ends.
pub(crate) async fn serve(proxy: Arc<Proxy>, sock: TcpListener) {
    let own = sock.local_addr().ok();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNS));
    loop {
        let stream = match sock.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::debug!(error = %crate::os_msg(&e), "admin accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // too many admin connections: drop this one
        };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = hyper::service::service_fn(move |req| {
                let p = proxy.clone();
                async move { Ok::<_, Infallible>(handle(&p, own, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

/// A refusal: one line of text.
fn refuse(status: StatusCode, why: impl core::fmt::Display) -> Resp {
    reply(status, "text/plain; charset=utf-8", format!("{why}\n"))
}

fn json_reply(status: StatusCode, v: &serde_json::Value) -> Resp {
    reply(status, "application/json", v.to_string())
}

/// True when `host` (a Host header) names a loopback address or the admin's own address.
fn host_allowed(host: &str, own: Option<SocketAddr>) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || own.is_some_and(|o| o.ip() == ip && !ip.is_unspecified()),
        Err(_) => false,
    }
}

async fn handle(p: &Arc<Proxy>, own: Option<SocketAddr>, req: Request<Incoming>) -> Resp {
    if req.headers().contains_key(ORIGIN) {
        return refuse(
            StatusCode::FORBIDDEN,
            "requests with an Origin header are refused (cross-site requests)",
        );
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, own) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("Host {host:?} refused: use a loopback address (127.0.0.1, localhost)"),
        );
    }
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let is_group = path.starts_with("/v1/groups/");
    match (&method, path.as_str()) {
        (&Method::GET, "/") => reply(StatusCode::OK, "text/html; charset=utf-8", STATUS_PAGE),
        (&Method::GET, "/v1/stats") => json_reply(StatusCode::OK, &stats(p)),
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            super::metrics::render(p),
        ),
        (&Method::POST, "/v1/reload" | "/v1/drain") => match mutation(p, req, &path).await {
            Ok(r) | Err(r) => r,
        },
        (&Method::PATCH, _) if is_group => match mutation(p, req, &path).await {
            Ok(r) | Err(r) => r,
        },
        (_, "/" | "/v1/stats" | "/metrics" | "/v1/reload" | "/v1/drain") => refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} not allowed on {path}"),
        ),
        _ if is_group => refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} not allowed on {path} (PATCH)"),
        ),
        _ => refuse(StatusCode::NOT_FOUND, format!("no such endpoint: {path}")),
    }
}

/// Checks token, content type and body size, then runs one mutation.
async fn mutation(p: &Arc<Proxy>, req: Request<Incoming>, path: &str) -> Result<Resp, Resp> {
    let token = p
        .token
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let Some(token) = token else {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "changes are disabled: no admin token configured (admin.token_file or THROTTLE_ADMIN_TOKEN)",
        ));
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        ));
    }
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, not {ct:?}"),
        ));
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"));
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"))?
        .to_bytes();
    match path {
        "/v1/reload" => match p.reload().await {
            Ok(summary) => Ok(json_reply(StatusCode::OK, &json!({ "reloaded": summary }))),
            Err(e) => Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("reload failed, the old config stays: {e}"),
            )),
        },
        "/v1/drain" => {
            p.begin_drain("POST /v1/drain");
            Ok(json_reply(
                StatusCode::ACCEPTED,
                &json!({ "draining": true, "connections": p.active.load(Ordering::Acquire) }),
            ))
        }
        _ => {
            let name = path.trim_start_matches("/v1/groups/");
            let patch: GroupPatch = serde_json::from_slice(&body)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))?;
            let Some(group) = p.tree.group(name) else {
                return Err(refuse(StatusCode::NOT_FOUND, format!("no group {name:?}")));
            };
            let new = patch
                .merged(&group.settings().plan)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, e))?;
            p.tree.patch(&group, &new, &patch);
            tracing::info!(group = %name, patch = %String::from_utf8_lossy(&body), "group changed by the admin API");
            Ok(json_reply(StatusCode::OK, &group_json(p, &group)))
        }
    }
}

fn dir_json(node: &throttle_tokio::Node, bytes: &AtomicU64) -> serde_json::Value {
    let s = node.stats();
    let limit = node.limits().ok().and_then(|l| l.rate_per_second());
    json!({
        "limit": limit,
        "rate": s.rate.round(),
        "bytes": bytes.load(Ordering::Relaxed),
        "waiting": s.waiting,
        "wait_seconds": s.waited.as_secs_f64(),
    })
}

fn group_json(_p: &Proxy, g: &super::state::Group) -> serde_json::Value {
    let s = g.settings().plan;
    json!({
        "name": g.name,
        "weight": s.weight,
        "match": {
            "listener": s.listeners,
            "client": s.clients.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "connections": g.connections(),
        "accepted": g.accepted.load(Ordering::Relaxed),
        "clients": g.up.clients.len(),
        "client_overflow": g.up.clients.has_overflow() || g.down.clients.has_overflow(),
        "per_client": { "up": rate_json(s.per_client.up.rate), "down": rate_json(s.per_client.down.rate) },
        "per_conn": { "up": rate_json(s.per_conn.up.rate), "down": rate_json(s.per_conn.down.rate) },
        "scheduled": {
            "up": s.schedule_up.is_some(),
            "down": s.schedule_down.is_some(),
        },
        "up": dir_json(&g.dir(Dir::Up).node, &g.bytes[0]),
        "down": dir_json(&g.dir(Dir::Down).node, &g.bytes[1]),
    })
}

/// `GET /v1/stats`: the tree with limits (bytes/s, `null` = none), smoothed rates, bytes,
/// waiters and connections.
pub(crate) fn stats(p: &Proxy) -> serde_json::Value {
    let plan = p.tree.plan();
    let bound = p.bound();
    json!({
        "uptime_seconds": p.started.elapsed().as_secs_f64(),
        "draining": p.draining.load(Ordering::Acquire),
        "connections": p.active.load(Ordering::Acquire),
        "rejected": p.rejected.load(Ordering::Relaxed),
        "server": {
            "up": dir_json(&p.tree.up, &p.tree.bytes[0]),
            "down": dir_json(&p.tree.down, &p.tree.bytes[1]),
        },
        "listeners": plan.listeners.iter().map(|l| json!({
            "name": l.name,
            "listen": bound.get(&super::ListenKey::of(l)).unwrap_or(&l.listen).to_string(),
            "upstream": l.upstream,
        })).collect::<Vec<_>>(),
        "groups": p.tree.groups().iter().map(|g| group_json(p, g)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_loopback_names_pass_others_fail() {
        for h in [
            "127.0.0.1:9901",
            "localhost:1",
            "LOCALHOST",
            "[::1]:9901",
            "127.0.0.2",
        ] {
            assert!(host_allowed(h, None), "{h}");
        }
        for h in [
            "",
            "evil.example:9901",
            "10.0.0.1:9901",
            "[::2]:1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!host_allowed(h, None), "{h}");
        }
        let own: SocketAddr = "10.0.0.1:9901".parse().unwrap();
        assert!(host_allowed("10.0.0.1:9901", Some(own)));
    }
}

//! Which key a request counts against: the client's address by default ([`PeerIp`], taken
//! from the connection, never from a header a client can write), or anything the caller
//! computes from the request head ([`KeyExtractor`] for closures).

use core::hash::Hash;
use core::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::{Extensions, HeaderMap, Method, Uri};

/// The parts of a request a key can be computed from (the body is not read).
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request URI.
    pub uri: &'a Uri,
    /// The request headers. A key taken from a header (`X-Forwarded-For`, an API key) is
    /// only as trustworthy as whatever wrote it: behind your own proxy, or after
    /// authentication.
    pub headers: &'a HeaderMap,
    /// The request extensions: where servers put the peer address and authentication layers
    /// put the authenticated user.
    pub extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `req`.
    pub fn of<B>(req: &'a http::Request<B>) -> Self {
        RequestHead {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }
}

/// Computes the key a request counts against. Implemented by [`PeerIp`] and by every
/// `Fn(&RequestHead) -> K` closure, e.g. a user id an authentication layer put in the
/// extensions:
///
/// ```
/// # #[derive(Clone, PartialEq, Eq, Hash)] struct UserId(u64);
/// use throttle_tower::{KeyExtractor, RequestHead};
/// let by_user = |req: &RequestHead<'_>| req.extensions.get::<UserId>().cloned();
/// # fn is_extractor<X: KeyExtractor>(_: &X) {}
/// # is_extractor(&by_user);
/// ```
pub trait KeyExtractor: Clone + Send + Sync + 'static {
    /// The key: requests with equal keys share one per-key limit.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;
    /// The key of one request.
    fn key(&self, req: &RequestHead<'_>) -> Self::Key;
}

impl<F, K> KeyExtractor for F
where
    F: Fn(&RequestHead<'_>) -> K + Clone + Send + Sync + 'static,
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    type Key = K;
    fn key(&self, req: &RequestHead<'_>) -> K {
        self(req)
    }
}

/// The default key: the client's IP address as the server saw the connection — a
/// [`SocketAddr`] in the request extensions (hyper-util and tonic servers can put it there),
/// or, with the `axum` feature, axum's `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`). Headers are never read, so a client
/// cannot choose its key.
///
/// IPv6 addresses count per /64 (one subscriber's prefix: a client rotating through its own
/// addresses stays one key); IPv4-mapped IPv6 addresses count as their IPv4 address.
/// Requests without a peer address share the key `None` (one per-key limit for all of them):
/// wire the connect info in, or use your own extractor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerIp;

impl KeyExtractor for PeerIp {
    type Key = Option<IpAddr>;
    fn key(&self, req: &RequestHead<'_>) -> Option<IpAddr> {
        peer(req.extensions).map(client_prefix)
    }
}

fn peer(ext: &Extensions) -> Option<IpAddr> {
    if let Some(a) = ext.get::<SocketAddr>() {
        return Some(a.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(c) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(c.0.ip());
    }
    None
}

/// IPv4 as is; IPv4-mapped IPv6 as IPv4; other IPv6 truncated to its /64.
fn client_prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_with(ext: Option<SocketAddr>) -> http::Request<()> {
        let mut req = http::Request::builder()
            .uri("/x")
            .header("x-forwarded-for", "203.0.113.9")
            .body(())
            .unwrap();
        if let Some(a) = ext {
            req.extensions_mut().insert(a);
        }
        req
    }

    #[test]
    fn peer_ip_reads_the_connection_not_the_headers() {
        let req = head_with(Some("192.0.2.7:4000".parse().unwrap()));
        assert_eq!(
            PeerIp.key(&RequestHead::of(&req)),
            Some("192.0.2.7".parse().unwrap())
        );
        let req = head_with(None);
        assert_eq!(PeerIp.key(&RequestHead::of(&req)), None);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let a = client_prefix("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_prefix("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = client_prefix("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            client_prefix("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn closures_are_extractors() {
        let by_path = |r: &RequestHead<'_>| r.uri.path().to_owned();
        let req = head_with(None);
        assert_eq!(by_path.key(&RequestHead::of(&req)), "/x");
    }
}

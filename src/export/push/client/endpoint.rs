//! Push URLs: `http(s)://host[:port][/path]`, checked once when an
//! exporter is built.

use crate::error::Error;

/// Where requests go: parsed once from the configured URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Host name or address, without brackets (for resolving).
    pub(super) host: String,
    pub(super) port: u16,
    /// `Host` header value (`host`, `host:port`, `[::1]:port`).
    pub(super) authority: String,
    /// Path prefix without a trailing `/` (empty for the root).
    pub(crate) path: String,
    /// `https://`.
    pub(super) tls: bool,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`. The path keeps what the user
    /// wrote (already URL-encoded), less a trailing `/`.
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Err(Error::InvalidConfig(format!("push URL {url:?}: {why}")));
        let (rest, tls) = if let Some(rest) = url.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = url.strip_prefix("https://") {
            if !cfg!(feature = "tls") {
                return bad("https needs the `tls` feature of vitals");
            }
            (rest, true)
        } else {
            return bad("must start with http:// or https://");
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return bad("no query or fragment allowed");
        }
        if authority.contains('@') {
            return bad("credentials in the URL are not supported (use the auth settings)");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some(end) = v6.find(']') else {
                return bad("unclosed [ in the host");
            };
            let port = &v6[end + 1..];
            let port = match port.strip_prefix(':') {
                Some(p) => Some(p),
                None if port.is_empty() => None,
                None => return bad("junk after ]"),
            };
            if v6[..end].parse::<std::net::Ipv6Addr>().is_err() {
                return bad("what is in [ ] is not an IPv6 address");
            }
            (&v6[..end], port)
        } else {
            match authority.split_once(':') {
                // A second colon: an IPv6 address without its brackets.
                Some((_, p)) if p.contains(':') => {
                    return bad("an IPv6 address must be in [ ]");
                }
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return bad("no host");
        }
        if host
            .bytes()
            .any(|b| b.is_ascii_control() || b" []<>\\^`{|}\"".contains(&b) || b > 0x7e)
        {
            return bad("the host has a space, a control, a non-ASCII or a reserved character");
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            // Digits only: `parse` alone would take `+80`, which the
            // `Host` header would then carry.
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return bad("the port must be 1 to 65535"),
            },
        };
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b > 0x7e)
        {
            return bad("the path has a space, a control or a non-ASCII character");
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path: path.trim_end_matches('/').to_owned(),
            tls,
        })
    }
}

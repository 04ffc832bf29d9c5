//! `NO_PROXY` lists: which hosts bypass the proxy, with the rules of Go's
//! `golang.org/x/net/http/httpproxy` (what OpenShift components and MTC's `noProxy` follow).
//!
//! Two departures, both toward fewer surprises: an entry `[::1]` (brackets, no port) is an IP
//! as one would expect, where Go would treat it as a domain; and domain entries never match
//! an IP address by suffix (Go lets `.0.1` match `10.0.0.1`).

use std::net::IpAddr;

/// A parsed bypass list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    /// `*` was in the list.
    all: bool,
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    rule: Rule,
    /// `None` matches every port.
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    Cidr {
        net: IpAddr,
        prefix: u8,
    },
    Ip(IpAddr),
    /// `domain` without a leading dot; `exact` when the domain itself matches too, not only
    /// its subdomains (`y.com` rather than `.y.com`).
    Domain {
        domain: String,
        exact: bool,
    },
}

impl NoProxy {
    /// Parses a comma-separated list. Entries are trimmed and lower-cased; empty and
    /// malformed ones are ignored, as Go does.
    ///
    /// * `*` bypasses everything.
    /// * `10.0.0.0/8`, `fd00::/8`: CIDR blocks.
    /// * `1.2.3.4`, `::1`, `[::1]`: one IP.
    /// * `y.com` matches `y.com` and its subdomains; `.y.com` and `*.y.com` only subdomains.
    /// * `host:port`, `.domain:port`, `1.2.3.4:port`, `[::1]:port`: only that port.
    pub fn parse(list: &str) -> NoProxy {
        let mut parsed = NoProxy::default();
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry == "*" {
                return NoProxy {
                    all: true,
                    entries: Vec::new(),
                };
            }
            parsed.entries.extend(parse_entry(&entry));
        }
        parsed
    }

    /// Whether `host:port` bypasses the proxy. The host is compared case-insensitively, a
    /// trailing dot and IPv6 brackets ignored.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = normalize(host);
        let ip = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        self.entries.iter().any(|entry| {
            entry.port.is_none_or(|p| p == port)
                && match (&entry.rule, ip) {
                    (Rule::Cidr { net, prefix }, Some(ip)) => contains(*net, *prefix, ip),
                    (Rule::Ip(expected), Some(ip)) => *expected == ip,
                    (Rule::Domain { domain, exact }, None) => {
                        (*exact && host == *domain) || is_subdomain(&host, domain)
                    }
                    _ => false,
                }
        })
    }
}

fn parse_entry(entry: &str) -> Option<Entry> {
    if entry.is_empty() {
        return None;
    }
    if let Some(rule) = cidr(entry) {
        return Some(Entry { rule, port: None });
    }
    let (host, port) = split_port(entry)?;
    let host = unbracket(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Entry {
            rule: Rule::Ip(ip.to_canonical()),
            port,
        });
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    // `*.y.com` is `.y.com`.
    let host = host
        .strip_prefix('*')
        .filter(|h| h.starts_with('.'))
        .unwrap_or(host);
    let (domain, exact) = match host.strip_prefix('.') {
        Some(domain) => (domain, false),
        None => (host, true),
    };
    if domain.is_empty() || !domain.bytes().all(crate::proxy::is_host_byte) {
        return None;
    }
    Some(Entry {
        rule: Rule::Domain {
            domain: domain.to_owned(),
            exact,
        },
        port,
    })
}

/// Splits `host:port` or `[v6]:port`; a bare IPv6 address has no port. `None` for a port
/// that is not a number, or a port without a host.
fn split_port(entry: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match entry.rfind(':') {
        Some(colon) if entry.starts_with('[') && entry[..colon].ends_with(']') => {
            (&entry[..colon], &entry[colon + 1..])
        }
        Some(colon) if !entry.starts_with('[') && entry.matches(':').count() == 1 => {
            (&entry[..colon], &entry[colon + 1..])
        }
        _ => return Some((entry, None)),
    };
    if host.is_empty() {
        return None;
    }
    Some((host, Some(port.parse().ok()?)))
}

fn cidr(entry: &str) -> Option<Rule> {
    let (net, prefix) = entry.split_once('/')?;
    let net: IpAddr = net.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let bits = if net.is_ipv4() { 32 } else { 128 };
    (prefix <= bits).then_some(Rule::Cidr { net, prefix })
}

fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            (u32::from(net) ^ u32::from(ip)) & mask == 0
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            (u128::from(net) ^ u128::from(ip)) & mask == 0
        }
        _ => false,
    }
}

fn normalize(host: &str) -> String {
    let host = unbracket(host.trim());
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// `host` ends in `.domain`.
fn is_subdomain(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (list, host, port, bypassed)
    const CASES: &[(&str, &str, u16, bool)] = &[
        // Empty lists and empty entries.
        ("", "y.com", 443, false),
        (" , ,", "y.com", 443, false),
        // `*` anywhere bypasses everything.
        ("*", "anything.example", 443, true),
        ("*", "10.1.2.3", 1, true),
        ("a.com, *", "y.com", 443, true),
        // `y.com`: itself and its subdomains, at label boundaries only.
        ("y.com", "y.com", 443, true),
        ("y.com", "x.y.com", 443, true),
        ("y.com", "a.b.y.com", 443, true),
        ("y.com", "xy.com", 443, false),
        ("y.com", "y.com.evil", 443, false),
        ("y.com", "com", 443, false),
        // `.y.com` and `*.y.com`: subdomains only.
        (".y.com", "x.y.com", 443, true),
        (".y.com", "y.com", 443, false),
        ("*.y.com", "x.y.com", 443, true),
        ("*.y.com", "y.com", 443, false),
        ("*.y.com", "xy.com", 443, false),
        ("*y.com", "y.com", 443, false),
        // Case and trailing dots, on either side; whitespace around entries.
        ("  Y.Com  ", "X.Y.COM", 443, true),
        ("y.com.", "x.y.com", 443, true),
        ("y.com", "x.y.com.", 443, true),
        (".Y.COM", "y.com.", 443, false),
        // Ports.
        ("y.com:443", "y.com", 443, true),
        ("y.com:443", "y.com", 80, false),
        (".y.com:8443", "x.y.com", 8443, true),
        (".y.com:8443", "x.y.com", 443, false),
        ("1.2.3.4:443", "1.2.3.4", 443, true),
        ("1.2.3.4:443", "1.2.3.4", 80, false),
        ("[fd00::1]:443", "fd00::1", 443, true),
        ("[fd00::1]:443", "fd00::1", 80, false),
        // Malformed entries are ignored, the rest still applies.
        ("y.com:https, z.com", "y.com", 443, false),
        (":443, z.com", "z.com", 443, true),
        ("a b.com", "a b.com", 443, false),
        // Exact IPs, v4 and v6, brackets allowed.
        ("1.2.3.4", "1.2.3.4", 443, true),
        ("1.2.3.4", "1.2.3.5", 443, false),
        ("fd00::1", "fd00::1", 443, true),
        ("fd00::1", "[FD00:0::1]", 443, true),
        ("[fd00::1]", "fd00::1", 443, true),
        ("fd00::1", "fd00::2", 443, false),
        ("::ffff:1.2.3.4", "1.2.3.4", 443, true),
        // CIDRs, v4 and v6.
        ("10.0.0.0/8", "10.255.0.1", 443, true),
        ("10.0.0.0/8", "11.0.0.1", 443, false),
        ("192.168.1.0/24", "192.168.1.77", 443, true),
        ("192.168.1.0/24", "192.168.2.1", 443, false),
        ("10.1.2.3/32", "10.1.2.3", 443, true),
        ("0.0.0.0/0", "8.8.8.8", 443, true),
        ("0.0.0.0/0", "fd00::1", 443, false),
        ("fd00::/8", "fd12:3456::1", 443, true),
        ("fd00::/8", "fe80::1", 443, false),
        ("::/0", "2001:db8::1", 443, true),
        ("10.0.0.0/33", "10.0.0.1", 443, false),
        ("10.0.0.0/8", "::ffff:10.0.0.1", 443, true),
        // IPs and domains do not cross.
        ("10.0.0.0/8", "10.example", 443, false),
        (".0.1", "10.0.0.1", 443, false),
        ("1.2.3.4", "1.2.3.4.nip.io", 443, false),
    ];

    #[test]
    fn go_httpproxy_rules() {
        for &(list, host, port, bypassed) in CASES {
            assert_eq!(
                NoProxy::parse(list).matches(host, port),
                bypassed,
                "NO_PROXY={list:?} for {host}:{port}"
            );
        }
    }
}

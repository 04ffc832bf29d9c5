//! A host name that is neither `localhost` nor a loopback IP, yet resolves to 127.0.0.0/8
//! without DNS: the machine's own name, when `/etc/hosts` maps it to loopback.
//!
//! Go's proxy rules never send `localhost` or a loopback IP through a proxy from the
//! environment, so only such a name can show whether an environment proxy is used at all.
//! Where the machine's name resolves elsewhere (a container with `172.17.0.2 <id>` in
//! `/etc/hosts`), the tests that need it fail and say why: a test that cannot check its
//! claim must not count as a pass.

use std::net::{IpAddr, ToSocketAddrs};

pub fn loopback_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_string();
    if name.is_empty() || name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let addrs: Vec<_> = (name.as_str(), 0).to_socket_addrs().ok()?.collect();
    let all_loopback = !addrs.is_empty()
        && addrs.iter().all(|a| match a.ip() {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(_) => false,
        });
    all_loopback.then_some(name)
}

/// [`loopback_hostname`], or a failure that says why the calling test cannot check anything
/// on this machine.
pub fn loopback_hostname_or_explain(test: &str) -> Option<String> {
    let name = loopback_hostname();
    assert!(
        name.is_some(),
        "{test}: cannot run: this machine's host name does not resolve only to 127.0.0.0/8 \
         through /etc/hosts, and these tests reach nothing outside loopback; map the host name \
         to 127.0.0.1 in /etc/hosts"
    );
    name
}

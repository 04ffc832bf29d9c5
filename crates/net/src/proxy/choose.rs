//! Which proxy, if any, carries a connection: `--proxy`, `--no-proxy` and the environment
//! variables curl and Go read.

use crate::error::NetError;
use crate::no_proxy::NoProxy;

use super::ProxyUrl;

/// Where a proxy may come from when `--proxy` is not given, in order (Go reads the first
/// two, curl all four).
const PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];
const NO_PROXY_VARS: [&str; 2] = ["NO_PROXY", "no_proxy"];

/// Picks the proxy for `host:port`, or `None` to connect directly.
///
/// * `explicit` (`--proxy`) wins; `Some("")` means "no proxy" even if the environment names
///   one. Otherwise the first non-empty of `HTTPS_PROXY`, `https_proxy`, `ALL_PROXY`,
///   `all_proxy`.
/// * The bypass list is `no_proxy` (`--no-proxy`) if given, else the first non-empty of
///   `NO_PROXY`, `no_proxy`; it applies to both sources, as in curl.
/// * A proxy from the environment never applies to `localhost` or a loopback IP (Go's
///   `httpproxy` rule); an explicit `--proxy` does.
///
/// An explicit proxy is validated even when bypassed, so a typo shows at once. One from the
/// environment is only parsed when it is used: pods inherit variables meant for other tools.
/// `env` is `|k| std::env::var(k).ok()` outside tests.
pub fn choose_proxy(
    explicit: Option<&str>,
    no_proxy: Option<&str>,
    host: &str,
    port: u16,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<ProxyUrl>, NetError> {
    let first = |names: &[&'static str]| {
        names.iter().find_map(|&name| {
            env(name)
                .filter(|value| !value.trim().is_empty())
                .map(|value| (name, value))
        })
    };
    let bypassed = || match no_proxy {
        Some(list) => NoProxy::parse(list).matches(host, port),
        None => {
            first(&NO_PROXY_VARS).is_some_and(|(_, list)| NoProxy::parse(&list).matches(host, port))
        }
    };
    if let Some(value) = explicit {
        if value.trim().is_empty() {
            return Ok(None);
        }
        let proxy = ProxyUrl::parse(value)?;
        return Ok((!bypassed()).then_some(proxy));
    }
    let Some((name, value)) = first(&PROXY_VARS) else {
        return Ok(None);
    };
    if is_loopback(host) || bypassed() {
        return Ok(None);
    }
    match ProxyUrl::parse(&value) {
        Ok(proxy) => Ok(Some(proxy)),
        Err(NetError::ProxyUrl { url, reason }) => Err(NetError::ProxyUrl {
            url,
            reason: format!(
                "{reason} (from the environment variable {name}; give --proxy to override it, \
                 or --proxy \"\" for none)"
            ),
        }),
        Err(other) => Err(other),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.trim_end_matches('.').eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::error::NetErrorClass;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    const ROUTE: &str = "dvm-ns.apps.example.com";

    /// (--proxy, --no-proxy, environment, host, the proxy host chosen)
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        &'static [(&'static str, &'static str)],
        &'static str,
        Option<&'static str>,
    );

    const CASES: &[Case] = &[
        // Nothing anywhere: direct.
        (None, None, &[], ROUTE, None),
        // --proxy alone.
        (Some("http://flag:3128"), None, &[], ROUTE, Some("flag")),
        // --proxy beats the environment.
        (
            Some("flag:3128"),
            None,
            &[("HTTPS_PROXY", "env:3128")],
            ROUTE,
            Some("flag"),
        ),
        // --proxy "" (or blank) disables even an environment proxy.
        (Some(""), None, &[("HTTPS_PROXY", "env:3128")], ROUTE, None),
        (
            Some("  "),
            None,
            &[("HTTPS_PROXY", "env:3128")],
            ROUTE,
            None,
        ),
        // The environment, in order; empty values are skipped.
        (
            None,
            None,
            &[("HTTPS_PROXY", "a:1"), ("https_proxy", "b:1")],
            ROUTE,
            Some("a"),
        ),
        (
            None,
            None,
            &[("HTTPS_PROXY", ""), ("https_proxy", "b:1")],
            ROUTE,
            Some("b"),
        ),
        (
            None,
            None,
            &[("https_proxy", "b:1"), ("ALL_PROXY", "c:1")],
            ROUTE,
            Some("b"),
        ),
        (
            None,
            None,
            &[("ALL_PROXY", "c:1"), ("all_proxy", "d:1")],
            ROUTE,
            Some("c"),
        ),
        (None, None, &[("all_proxy", "d:1")], ROUTE, Some("d")),
        // HTTP_PROXY is for plain-HTTP requests, which Ferry never makes.
        (None, None, &[("HTTP_PROXY", "h:1")], ROUTE, None),
        // Loopback never goes through a proxy from the environment...
        (None, None, &[("HTTPS_PROXY", "env:1")], "localhost", None),
        (None, None, &[("HTTPS_PROXY", "env:1")], "LOCALHOST.", None),
        (None, None, &[("HTTPS_PROXY", "env:1")], "127.0.0.1", None),
        (None, None, &[("HTTPS_PROXY", "env:1")], "127.9.9.9", None),
        (None, None, &[("HTTPS_PROXY", "env:1")], "::1", None),
        (None, None, &[("HTTPS_PROXY", "env:1")], "[::1]", None),
        (
            None,
            None,
            &[("HTTPS_PROXY", "env:1")],
            "localhost.example",
            Some("env"),
        ),
        // ...but does through an explicit one.
        (Some("flag:1"), None, &[], "localhost", Some("flag")),
        (Some("flag:1"), None, &[], "127.0.0.1", Some("flag")),
        // NO_PROXY applies to both sources.
        (
            None,
            None,
            &[("HTTPS_PROXY", "env:1"), ("NO_PROXY", ".example.com")],
            ROUTE,
            None,
        ),
        (
            None,
            None,
            &[("HTTPS_PROXY", "env:1"), ("no_proxy", "example.com")],
            ROUTE,
            None,
        ),
        (
            Some("flag:1"),
            None,
            &[("NO_PROXY", ".example.com")],
            ROUTE,
            None,
        ),
        (
            None,
            None,
            &[("HTTPS_PROXY", "env:1"), ("NO_PROXY", "other.com")],
            ROUTE,
            Some("env"),
        ),
        // NO_PROXY before no_proxy; an empty NO_PROXY is skipped.
        (
            None,
            None,
            &[
                ("HTTPS_PROXY", "env:1"),
                ("NO_PROXY", "other.com"),
                ("no_proxy", "*"),
            ],
            ROUTE,
            Some("env"),
        ),
        (
            None,
            None,
            &[
                ("HTTPS_PROXY", "env:1"),
                ("NO_PROXY", ""),
                ("no_proxy", "*"),
            ],
            ROUTE,
            None,
        ),
        // --no-proxy replaces NO_PROXY, also when it is empty.
        (
            None,
            Some("other.com"),
            &[("HTTPS_PROXY", "env:1"), ("NO_PROXY", "*")],
            ROUTE,
            Some("env"),
        ),
        (
            None,
            Some(""),
            &[("HTTPS_PROXY", "env:1"), ("NO_PROXY", "*")],
            ROUTE,
            Some("env"),
        ),
        (None, Some(ROUTE), &[("HTTPS_PROXY", "env:1")], ROUTE, None),
        (Some("flag:1"), Some("*"), &[], ROUTE, None),
        (
            Some("flag:1"),
            Some("other.com"),
            &[("NO_PROXY", "*")],
            ROUTE,
            Some("flag"),
        ),
        // Ports in the bypass list.
        (Some("flag:1"), Some("example.com:443"), &[], ROUTE, None),
        (
            Some("flag:1"),
            Some("example.com:8443"),
            &[],
            ROUTE,
            Some("flag"),
        ),
    ];

    #[test]
    fn precedence_of_flags_environment_and_bypass_lists() {
        for (i, &(explicit, no_proxy, vars, host, chosen)) in CASES.iter().enumerate() {
            let proxy = choose_proxy(explicit, no_proxy, host, 443, env(vars))
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(
                proxy.as_ref().map(ProxyUrl::host),
                chosen,
                "case {i}: --proxy {explicit:?} --no-proxy {no_proxy:?} {vars:?} for {host}"
            );
        }
    }

    #[test]
    fn a_bad_explicit_proxy_fails_even_when_bypassed() {
        let error = choose_proxy(
            Some("socks5://u:secret@p:1"),
            Some("*"),
            ROUTE,
            443,
            env(&[]),
        )
        .unwrap_err();
        assert_eq!(error.class(), NetErrorClass::Config);
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn a_bad_environment_proxy_names_its_variable_and_fails_only_when_used() {
        let vars = [("https_proxy", "https://u:secret@p:443")];
        let error = choose_proxy(None, None, ROUTE, 443, env(&vars)).unwrap_err();
        let message = error.to_string();
        assert_eq!(error.class(), NetErrorClass::Config);
        assert!(message.contains("https_proxy"), "{message}");
        assert!(message.contains("not supported"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        assert!(!format!("{error:?}").contains("secret"));
        assert_eq!(
            choose_proxy(None, None, "localhost", 443, env(&vars)).unwrap(),
            None
        );
        assert_eq!(
            choose_proxy(None, Some("*"), ROUTE, 443, env(&vars)).unwrap(),
            None
        );
    }
}

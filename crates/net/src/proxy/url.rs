//! Where the HTTP proxy is and who we are to it, with the password kept out of every rendering.
//!
//! The accepted forms follow what operators paste (MTC's `stunnel_tcp_proxy`, curl's and Go's
//! `HTTPS_PROXY`): `http://[user[:password]@]host[:port]`, or the same without the scheme.
//! Passwords are often pasted raw, so userinfo ends at the LAST `@`: a raw `@`, `/`, `#` or `?`
//! in a password still parses. Percent-escapes in user and password are decoded; a `%` not
//! followed by two hex digits is kept as it is, since such a password was not encoded.

use std::fmt;
use std::net::Ipv6Addr;

use base64::Engine as _;

use crate::error::NetError;

/// The port of a proxy URL without one, as for curl's and Go's `http://` proxies.
const DEFAULT_PORT: u16 = 80;
/// Longest raw URL echoed in an error, so a pasted file does not become the message.
const MAX_ECHO: usize = 200;

/// An HTTP proxy. `Debug` and `Display` show `http://user:***@host:port`: the user, never the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// Without brackets, also for IPv6, so it can be dialled as is.
    host: String,
    port: u16,
    /// `Some` (possibly empty) exactly when the URL had a userinfo part.
    user: Option<String>,
    password: Option<String>,
}

impl ProxyUrl {
    /// Parses `http://[user[:password]@]host[:port]` (port 80 by default), also without the
    /// scheme, IPv6 hosts in brackets. Surrounding whitespace is ignored.
    ///
    /// Fails with [`NetError::ProxyUrl`] (class `Config`, the URL redacted) on `https://` and
    /// `socks*://` proxies, other schemes, an empty or malformed host, a bad port, or a path
    /// other than `/`.
    pub fn parse(s: &str) -> Result<ProxyUrl, NetError> {
        let s = s.trim();
        parse(s).map_err(|invalid| NetError::ProxyUrl {
            url: redact_raw(s, &invalid),
            reason: invalid.to_string(),
        })
    }

    /// The host to dial, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URL carries a user (and maybe a password) to send as basic auth.
    pub fn has_credentials(&self) -> bool {
        self.user.is_some()
    }

    /// The form for messages: `http://user:***@host:port`.
    pub fn redacted(&self) -> String {
        self.to_string()
    }

    /// The user name sent, for messages; empty without credentials.
    pub(crate) fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("")
    }

    /// The value of `Proxy-Authorization` (RFC 7617 basic auth), if there are credentials.
    pub(crate) fn basic_auth(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        let password = self.password.as_deref().unwrap_or("");
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {token}"))
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("http://")?;
        if let Some(user) = &self.user {
            write_encoded(f, user)?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxyUrl")
            .field(&format_args!("{self}"))
            .finish()
    }
}

/// Percent-encodes all but RFC 3986 unreserved and sub-delims, so the shown URL parses back
/// and a user name cannot smuggle control characters into a log line.
fn write_encoded(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&byte) {
            write!(f, "{}", char::from(byte))?;
        } else {
            write!(f, "%{byte:02X}")?;
        }
    }
    Ok(())
}

/// Why a proxy URL was refused.
#[derive(Debug)]
enum Invalid {
    Unsupported(String),
    UnknownScheme(String),
    NoHost,
    BadHost,
    BadIpv6,
    Ipv6NeedsBrackets,
    BadPort,
    Path,
    NotUtf8,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Unsupported(scheme) => write!(
                f,
                "the {scheme}:// scheme is not supported: Ferry speaks HTTP CONNECT to the \
                 proxy; TLS runs inside the tunnel"
            ),
            Invalid::UnknownScheme(scheme) => {
                write!(f, "unknown scheme {scheme:?}; only http:// is supported")
            }
            Invalid::NoHost => f.write_str("the host is empty"),
            Invalid::BadHost => f.write_str(
                "the host may hold only letters, digits, '-', '.' and '_' (IPv6 addresses go \
                 in brackets)",
            ),
            Invalid::BadIpv6 => f.write_str("the part in brackets is not an IPv6 address"),
            Invalid::Ipv6NeedsBrackets => f.write_str(
                "an IPv6 address must be written in brackets, as in http://[fd00::1]:3128",
            ),
            Invalid::BadPort => f.write_str(
                "the port (shown as ***) is not a number from 1 to 65535; if that part is \
                 USER:PASSWORD, add @HOST[:PORT] after it",
            ),
            Invalid::Path => {
                f.write_str("a path, query or fragment other than \"/\" is not allowed")
            }
            Invalid::NotUtf8 => {
                f.write_str("the user or password is not UTF-8 once percent-escapes are decoded")
            }
        }
    }
}

fn parse(s: &str) -> Result<ProxyUrl, Invalid> {
    let rest = match s.split_once("://") {
        Some((scheme, rest)) => {
            check_scheme(scheme)?;
            rest
        }
        None => s,
    };
    let (userinfo, after) = split_userinfo(rest);
    let (authority, path) = split_path(after);
    if !(path.is_empty() || path == "/") {
        return Err(Invalid::Path);
    }
    let (host, port) = host_port(authority)?;
    let (user, password) = match userinfo {
        None => (None, None),
        Some(info) => match info.split_once(':') {
            Some((user, password)) => (Some(decode(user)?), Some(decode(password)?)),
            None => (Some(decode(info)?), None),
        },
    };
    Ok(ProxyUrl {
        host,
        port,
        user,
        password,
    })
}

fn check_scheme(scheme: &str) -> Result<(), Invalid> {
    let lower = scheme.to_ascii_lowercase();
    match lower.as_str() {
        "http" => Ok(()),
        "https" => Err(Invalid::Unsupported(lower)),
        _ if lower.starts_with("socks") => Err(Invalid::Unsupported(lower)),
        _ => Err(Invalid::UnknownScheme(printable(scheme, 20))),
    }
}

/// Splits at the last `@`, so raw `@`s in a password stay in the password.
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

fn split_path(after: &str) -> (&str, &str) {
    match after.find(['/', '?', '#']) {
        Some(i) => after.split_at(i),
        None => (after, ""),
    }
}

fn host_port(authority: &str) -> Result<(String, u16), Invalid> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']').ok_or(Invalid::BadIpv6)?;
        let ip: Ipv6Addr = inside.parse().map_err(|_| Invalid::BadIpv6)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(Invalid::BadHost)?),
        };
        (ip.to_string(), port)
    } else {
        match authority.matches(':').count() {
            0 => (authority.to_owned(), None),
            1 => {
                let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
                (host.to_owned(), Some(port))
            }
            _ => return Err(Invalid::Ipv6NeedsBrackets),
        }
    };
    if host.is_empty() {
        return Err(Invalid::NoHost);
    }
    if !host.contains(':') && !host.bytes().all(is_host_byte) {
        return Err(Invalid::BadHost);
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => parse_port(port).ok_or(Invalid::BadPort)?,
    };
    Ok((host, port))
}

pub(crate) fn is_host_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_')
}

fn parse_port(port: &str) -> Option<u16> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse().ok().filter(|&port| port != 0)
}

fn decode(s: &str) -> Result<String, Invalid> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Invalid::NotUtf8)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The raw URL for an error message: the password replaced by `***`, and, when the port is
/// what failed, the port too, since `http://user:password` without a host reads as host:port.
fn redact_raw(s: &str, invalid: &Invalid) -> String {
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), s),
    };
    let (userinfo, after) = split_userinfo(rest);
    let mut out = scheme;
    if let Some(info) = userinfo {
        match info.split_once(':') {
            Some((user, _)) => out.push_str(&format!("{user}:***@")),
            None => out.push_str(&format!("{info}@")),
        }
    }
    let (authority, path) = split_path(after);
    match (invalid, authority.rfind(':')) {
        (Invalid::BadPort, Some(colon)) => out.push_str(&format!("{}***", &authority[..=colon])),
        _ => out.push_str(authority),
    }
    out.push_str(path);
    printable(&out, MAX_ECHO)
}

/// Printable ASCII only (others become `?`), at most `max` characters.
pub(crate) fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::NetErrorClass;

    /// (input, host, port, user, password)
    type Good = (
        &'static str,
        &'static str,
        u16,
        Option<&'static str>,
        Option<&'static str>,
    );

    const GOOD: &[Good] = &[
        (
            "http://proxy.example:3128",
            "proxy.example",
            3128,
            None,
            None,
        ),
        ("http://proxy.example", "proxy.example", 80, None, None),
        ("http://proxy.example/", "proxy.example", 80, None, None),
        (
            "HTTP://Proxy.Example:8080/",
            "Proxy.Example",
            8080,
            None,
            None,
        ),
        ("  http://p:1  ", "p", 1, None, None),
        ("proxy.example:3128", "proxy.example", 3128, None, None),
        ("10.0.0.5:3128", "10.0.0.5", 3128, None, None),
        ("10.0.0.5", "10.0.0.5", 80, None, None),
        ("http://[fd00::5]:3128", "fd00::5", 3128, None, None),
        ("[::1]", "::1", 80, None, None),
        (
            "http://user:secret@10.0.0.5:3128",
            "10.0.0.5",
            3128,
            Some("user"),
            Some("secret"),
        ),
        (
            "http://user:p%40ss@proxy:3128",
            "proxy",
            3128,
            Some("user"),
            Some("p@ss"),
        ),
        (
            "http://user:p@ss@proxy:3128",
            "proxy",
            3128,
            Some("user"),
            Some("p@ss"),
        ),
        (
            "http://us%3Aer:a:b/c#d?e@proxy:3128",
            "proxy",
            3128,
            Some("us:er"),
            Some("a:b/c#d?e"),
        ),
        (
            "http://100%25:50%zz@p",
            "p",
            80,
            Some("100%"),
            Some("50%zz"),
        ),
        (
            "user:pw@proxy:3128",
            "proxy",
            3128,
            Some("user"),
            Some("pw"),
        ),
        ("http://user@proxy:3128", "proxy", 3128, Some("user"), None),
        (
            "http://user:@proxy:3128",
            "proxy",
            3128,
            Some("user"),
            Some(""),
        ),
        (
            "http://user:secret@[fd00::5]:3128/",
            "fd00::5",
            3128,
            Some("user"),
            Some("secret"),
        ),
    ];

    #[test]
    fn parses_the_forms_operators_paste() {
        for &(input, host, port, user, password) in GOOD {
            let url = ProxyUrl::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(url.host(), host, "{input}");
            assert_eq!(url.port(), port, "{input}");
            assert_eq!(url.user.as_deref(), user, "{input}");
            assert_eq!(url.password.as_deref(), password, "{input}");
            assert_eq!(url.has_credentials(), user.is_some(), "{input}");
        }
    }

    /// (input, a piece of the reason, the redacted URL in the message)
    const BAD: &[(&str, &str, &str)] = &[
        (
            "https://user:secret@proxy:443",
            "TLS runs inside the tunnel",
            "https://user:***@proxy:443",
        ),
        (
            "socks5://proxy:1080",
            "socks5:// scheme is not supported",
            "socks5://proxy:1080",
        ),
        (
            "socks5h://u:secret@proxy:1080",
            "not supported",
            "socks5h://u:***@proxy:1080",
        ),
        ("ftp://proxy:21", "unknown scheme", "ftp://proxy:21"),
        ("http://", "host is empty", "http://"),
        ("http://user:secret@", "host is empty", "http://user:***@"),
        (
            "http://user:secret@:3128",
            "host is empty",
            "http://user:***@:3128",
        ),
        ("http://proxy:0", "port", "http://proxy:***"),
        ("http://proxy:65536", "port", "http://proxy:***"),
        ("http://proxy:", "port", "http://proxy:***"),
        ("http://proxy:31x8", "port", "http://proxy:***"),
        // A forgotten host: the password would sit where the port goes.
        ("http://user:secret", "USER:PASSWORD", "http://user:***"),
        ("http://proxy:3128/path", "path", "http://proxy:3128/path"),
        ("http://proxy:3128?x=1", "query", "http://proxy:3128?x=1"),
        ("http://fd00::5:3128", "brackets", "http://fd00::5:3128"),
        ("http://[fd00::5:3128", "IPv6", "http://[fd00::5:3128"),
        ("http://[not-v6]:3128", "IPv6", "http://[not-v6]:3128"),
        ("http://pro xy:3128", "host may hold", "http://pro xy:3128"),
        ("http://u:%ff@proxy", "UTF-8", "http://u:***@proxy"),
    ];

    #[test]
    fn refuses_what_it_cannot_use_with_a_redacted_url() {
        for &(input, reason_piece, shown) in BAD {
            let error = ProxyUrl::parse(input).expect_err(input);
            assert_eq!(error.class(), NetErrorClass::Config, "{input}");
            let NetError::ProxyUrl { url, reason } = &error else {
                panic!("{input}: {error:?}");
            };
            assert_eq!(url, shown, "{input}");
            assert!(reason.contains(reason_piece), "{input}: {reason}");
            for text in [error.to_string(), format!("{error:?}")] {
                assert!(!text.contains("secret"), "{input}: {text}");
            }
        }
    }

    #[test]
    fn display_and_debug_show_the_user_but_never_the_password() {
        let cases = [
            (
                "http://alice:secret@proxy:3128",
                "http://alice:***@proxy:3128",
            ),
            ("http://alice@proxy:3128", "http://alice@proxy:3128"),
            ("http://proxy", "http://proxy:80"),
            (
                "http://a%40b:secret@[fd00::1]:8",
                "http://a%40b:***@[fd00::1]:8",
            ),
            ("http://a%0Ab:secret@p:8", "http://a%0Ab:***@p:8"),
        ];
        for (input, shown) in cases {
            let url = ProxyUrl::parse(input).unwrap();
            assert_eq!(url.to_string(), shown);
            assert_eq!(url.redacted(), shown);
            assert_eq!(format!("{url:?}"), format!("ProxyUrl({shown})"));
            assert_eq!(format!("{url:#?}").matches("secret").count(), 0);
            // The shown form parses back to the same place and user.
            let back = ProxyUrl::parse(shown).unwrap();
            assert_eq!(
                (back.host(), back.port(), back.user()),
                (url.host(), url.port(), url.user())
            );
        }
    }

    #[test]
    fn basic_auth_encodes_user_colon_password() {
        let auth = |s: &str| ProxyUrl::parse(s).unwrap().basic_auth();
        // RFC 7617's example.
        assert_eq!(
            auth("http://Aladdin:open%20sesame@p").as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(auth("http://user@p").as_deref(), Some("Basic dXNlcjo="));
        assert_eq!(auth("http://p"), None);
    }
}

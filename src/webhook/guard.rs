//! Where outcome webhooks may go (SSRF guard). A webhook URL comes from whoever starts a job,
//! and the function runs inside someone's network, so the URL is checked twice: its form when
//! the job is accepted, and every address its host resolves to right before each attempt.
//! The connection then goes to the address that was checked (no second lookup), and
//! redirects are never followed.
//!
//! Always refused: link-local (169.254.0.0/16, which holds the instance-metadata and ECS
//! credential addresses, and fe80::/10), the EC2 IPv6 metadata address, unspecified, multicast
//! and broadcast addresses, and `0.0.0.0/8`. Loopback: only in local mode (the CLI); in a
//! deployment it would reach the Lambda runtime API. Private ranges (RFC 1918, 100.64.0.0/10,
//! fc00::/7): only those the deployment allows by CIDR. `http` only to loopback, in local mode.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

/// An IP network written as `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.20.0.0/16` or `fd00::/8`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a CIDR range such as 10.20.0.0/16"))?;
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` in `{text}` is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("`{text}` has a prefix length above {max}"))?;
        Ok(Self { network, prefix })
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// What kind of address an IP is, for the guard's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Forbidden(&'static str),
    Loopback,
    Private,
    Public,
}

fn kind_v4(ip: Ipv4Addr) -> Kind {
    let o = ip.octets();
    if ip.is_link_local() {
        Kind::Forbidden("a link-local address (instance metadata lives there)")
    } else if ip.is_unspecified() || o[0] == 0 {
        Kind::Forbidden("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Kind::Forbidden("a multicast or broadcast address")
    } else if ip.is_loopback() {
        Kind::Loopback
    } else if ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
        Kind::Private
    } else {
        Kind::Public
    }
}

fn kind(ip: IpAddr) -> Kind {
    match ip {
        IpAddr::V4(v4) => kind_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return kind_v4(v4);
            }
            let seg = v6.segments();
            if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Kind::Forbidden("the instance-metadata address")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Kind::Forbidden("a link-local address")
            } else if v6.is_unspecified() {
                Kind::Forbidden("an unspecified address")
            } else if v6.is_multicast() {
                Kind::Forbidden("a multicast address")
            } else if v6.is_loopback() {
                Kind::Loopback
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Kind::Private
            } else {
                Kind::Public
            }
        }
    }
}

/// The rules one process delivers webhooks under.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// Local mode (the CLI): loopback receivers allowed, `http` to them too.
    pub local: bool,
    /// Private ranges the deployment allows by name.
    pub allowed_private: Vec<Cidr>,
}

impl UrlPolicy {
    /// The CLI's rules: loopback allowed (also over `http`).
    pub fn local() -> Self {
        Self {
            local: true,
            allowed_private: Vec::new(),
        }
    }

    /// A deployment's rules: public addresses, plus the private ranges listed.
    pub fn deployed(allowed_private: Vec<Cidr>) -> Self {
        Self {
            local: false,
            allowed_private,
        }
    }

    /// Parses a comma-separated list of CIDR ranges (`VECMIGRATE_ALLOWED_PRIVATE_RANGES`).
    pub fn parse_ranges(text: &str) -> Result<Vec<Cidr>, String> {
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Cidr::parse)
            .collect()
    }

    fn check_ip(&self, ip: IpAddr, https: bool) -> Result<(), String> {
        match kind(ip) {
            Kind::Forbidden(what) => Err(format!("{ip} is {what}")),
            Kind::Loopback if self.local => Ok(()),
            Kind::Loopback => Err(format!("{ip} is a loopback address")),
            _ if !https => Err("plain http is only allowed to a loopback address in local runs; use https".into()),
            Kind::Private if self.allowed_private.iter().any(|c| c.contains(ip)) => Ok(()),
            Kind::Private => Err(format!(
                "{ip} is a private address, and this deployment does not allow its range (parameter AllowedPrivateWebhookRanges)"
            )),
            Kind::Public => Ok(()),
        }
    }

    /// Checks what can be checked without a lookup: scheme, host, a literal address.
    pub fn check_url(&self, url: &str) -> Result<Url, String> {
        // The URL parser reads `https:///x` as host `x`; the caller meant something else.
        let after_scheme = url.trim().split_once("://").map(|(_, rest)| rest);
        if after_scheme.is_some_and(|rest| rest.is_empty() || rest.starts_with('/')) {
            return Err("has no host".into());
        }
        let parsed = Url::parse(url.trim()).map_err(|e| format!("is not a URL: {e}"))?;
        let https = match parsed.scheme() {
            "https" => true,
            "http" if self.local => false,
            "http" => return Err("must be https".into()),
            other => return Err(format!("scheme `{other}` is not allowed; use https")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not carry credentials".into());
        }
        match parsed.host() {
            None => Err("has no host".into()),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip), https).map(|_| parsed),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip), https).map(|_| parsed),
            Some(url::Host::Domain(host)) => {
                if !https && host != "localhost" {
                    return Err(
                        "plain http is only allowed to a loopback address in local runs; use https"
                            .into(),
                    );
                }
                Ok(parsed)
            }
        }
    }

    /// Resolves the URL's host and checks every address it has; returns the one to connect to.
    pub async fn resolve(&self, url: &Url) -> Result<SocketAddr, Refusal> {
        let https = url.scheme() == "https";
        let host = url
            .host_str()
            .ok_or_else(|| Refusal::Forbidden("has no host".into()))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Refusal::Lookup(format!("cannot resolve `{host}`: {e}")))?
            .collect();
        if addresses.is_empty() {
            return Err(Refusal::Lookup(format!("`{host}` has no address")));
        }
        // Every address must pass: a name that also points inside is refused as a whole.
        for a in &addresses {
            self.check_ip(a.ip(), https)
                .map_err(|e| Refusal::Forbidden(format!("`{host}` resolves to {e}")))?;
        }
        Ok(addresses[0])
    }
}

/// Why a URL may not be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The address is not allowed: never retried.
    Forbidden(String),
    /// The name did not resolve: may be retried.
    Lookup(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_must_never_be_reached() {
        let deployed = UrlPolicy::deployed(vec![Cidr::parse("10.20.0.0/16").unwrap()]);
        let local = UrlPolicy::local();
        // (url, allowed when deployed, allowed locally)
        let table = [
            ("https://hooks.example.com/x", true, true),
            ("https://203.0.113.9/x", true, true),
            ("https://169.254.169.254/latest/meta-data", false, false),
            ("https://169.254.170.2/v2/credentials", false, false),
            ("https://[fd00:ec2::254]/", false, false),
            ("https://[fe80::1]/", false, false),
            ("https://[::ffff:169.254.169.254]/", false, false),
            ("https://0.0.0.0/", false, false),
            ("https://224.0.0.1/", false, false),
            ("https://10.0.0.5/", false, false),
            ("https://10.20.3.4/", true, false),
            ("https://192.168.1.10/", false, false),
            ("https://172.16.0.1/", false, false),
            ("https://100.64.0.1/", false, false),
            ("https://[fc00::1]/", false, false),
            ("https://127.0.0.1:8080/", false, true),
            ("http://127.0.0.1:8080/", false, true),
            ("http://localhost:8080/", false, true),
            ("http://hooks.example.com/", false, false),
            ("http://203.0.113.9/", false, false),
            ("ftp://hooks.example.com/", false, false),
            ("https://user:pw@hooks.example.com/", false, false),
        ];
        for (url, when_deployed, when_local) in table {
            assert_eq!(
                deployed.check_url(url).is_ok(),
                when_deployed,
                "deployed: {url}"
            );
            assert_eq!(local.check_url(url).is_ok(), when_local, "local: {url}");
        }
    }

    #[test]
    fn cidr_ranges() {
        let c = Cidr::parse("10.20.0.0/16").unwrap();
        assert!(c.contains("10.20.255.1".parse().unwrap()));
        assert!(!c.contains("10.21.0.1".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("ten/8").is_err());
        assert_eq!(
            UrlPolicy::parse_ranges(" 10.0.0.0/8, ,192.168.0.0/16")
                .unwrap()
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn names_are_checked_by_every_address_they_resolve_to() {
        let deployed = UrlPolicy::deployed(Vec::new());
        let url = Url::parse("https://localhost:9443/").unwrap();
        assert!(matches!(
            deployed.resolve(&url).await,
            Err(Refusal::Forbidden(_))
        ));
        let local = UrlPolicy::local();
        assert_eq!(local.resolve(&url).await.unwrap().port(), 9443);
    }
}

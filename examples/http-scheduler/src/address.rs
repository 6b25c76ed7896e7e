//! Which addresses a job may call, as go-again has it: by default no
//! loopback, private, link-local (cloud metadata: `169.254.169.254`),
//! unique-local (`fd00:ec2::254`), multicast or unspecified address.
//!
//! The check is made on the addresses a host name *resolves to*, by the
//! resolver the HTTP client connects with ([`GuardedResolver`]): the
//! address checked is the address connected to, so a name that resolves
//! to a public address when a job is scheduled and to a private one when
//! it runs (DNS rebinding) is refused at the call. A URL with an IP
//! literal never reaches a resolver, so [`AddressPolicy::check_url`] checks
//! it before each request, and every redirect hop goes through both
//! again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What is allowed beyond public addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Loopback (`127.0.0.0/8`, `::1`): `EBB_SCHEDULER_ALLOW_LOOPBACK=1`.
    /// Default: refused.
    pub allow_loopback: bool,
    /// Private and shared ranges (`10/8`, `172.16/12`, `192.168/16`,
    /// `100.64/10`, `fc00::/7`): `EBB_SCHEDULER_ALLOW_PRIVATE=1`. Link-local
    /// and metadata addresses stay refused. Default: refused.
    pub allow_private: bool,
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The address is in a range the policy refuses.
    #[error("{host} is {kind} address {ip}, which jobs may not call")]
    Address {
        /// The host as written in the URL.
        host: String,
        /// The address it is or resolved to.
        ip: IpAddr,
        /// "a loopback", "a private", ...
        kind: &'static str,
    },
    /// The host name did not resolve.
    #[error("{host} does not resolve: {reason}")]
    Unresolved {
        /// The host name.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// The URL cannot be called at all.
    #[error("{0}")]
    Url(String),
}

/// The kind of a refused range, or `None` for an address jobs may call.
fn classify(ip: IpAddr) -> Option<(&'static str, Range)> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return classify_v4(v4);
            }
            let segments = v6.segments();
            if v6.is_loopback() {
                Some(("a loopback", Range::Loopback))
            } else if v6.is_unspecified() {
                Some(("an unspecified", Range::Never))
            } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
                Some(("a link-local", Range::Never))
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some(("a metadata", Range::Never))
            } else if segments[0] & 0xfe00 == 0xfc00 {
                Some(("a unique-local", Range::Private))
            } else if segments[0] & 0xff00 == 0xff00 {
                Some(("a multicast", Range::Never))
            } else {
                None
            }
        }
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible or NAT64 (`64:ff9b::/96`) IPv6 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4];
    (mapped || compatible || nat64).then_some(tail)
}

fn classify_v4(v4: Ipv4Addr) -> Option<(&'static str, Range)> {
    let [a, b, c, _] = v4.octets();
    if v4.is_loopback() {
        Some(("a loopback", Range::Loopback))
    } else if v4 == Ipv4Addr::new(169, 254, 169, 254) {
        Some(("a metadata", Range::Never))
    } else if v4.is_link_local() {
        Some(("a link-local", Range::Never))
    } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some(("a private", Range::Private))
    } else if a == 0 {
        Some(("an unspecified", Range::Never))
    } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
        Some(("a multicast or reserved", Range::Never))
    } else if a == 192 && b == 0 && c == 0 {
        Some(("a protocol-assignment", Range::Never))
    } else {
        None
    }
}

/// Which setting, if any, allows a refused range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    Loopback,
    Private,
    Never,
}

impl AddressPolicy {
    /// `Ok` when jobs may call `ip`; else the reason, naming `host`.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let Some((kind, range)) = classify(ip) else {
            return Ok(());
        };
        let allowed = match range {
            Range::Loopback => self.allow_loopback,
            Range::Private => self.allow_private,
            Range::Never => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused::Address {
                host: host.to_owned(),
                ip,
                kind,
            })
        }
    }

    /// Checks the URL's host if it is an IP literal; a host name is left
    /// to the resolver at the call ([`GuardedResolver`]). What a request
    /// and each redirect hop pass before they are sent.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Url(format!(
                "{url}: only http and https URLs are called"
            )));
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(Refused::Url(format!("{url} has no host"))),
        }
    }

    /// Resolves `host` and checks every address; the addresses when all
    /// pass. A name with any refused address is refused as a whole, since
    /// the client may connect to any of them.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            self.check_ip(host, ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| Refused::Unresolved {
                host: host.to_owned(),
                reason: err.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(Refused::Unresolved {
                host: host.to_owned(),
                reason: "no addresses".into(),
            });
        }
        for addr in &addrs {
            self.check_ip(host, addr.ip())?;
        }
        Ok(addrs)
    }

    /// The check made when a job is scheduled: the URL's host, literal or
    /// resolved now. The same check runs again at each call.
    pub async fn check_target(&self, url: &str) -> Result<(), Refused> {
        let url = reqwest::Url::parse(url).map_err(|err| Refused::Url(err.to_string()))?;
        self.check_url(&url)?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(80);
            self.resolve(host, port).await?;
        }
        Ok(())
    }
}

/// The HTTP client's resolver: resolves with the system's resolver and
/// refuses a name with any address the policy refuses, so that the
/// address checked is the address connected to.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: AddressPolicy) -> Arc<Self> {
        Arc::new(Self { policy })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            // The port is replaced by the client with the URL's.
            let addrs = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: AddressPolicy, ip: &str) -> bool {
        policy.check_ip("h", ip.parse().unwrap()).is_err()
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused_by_default() {
        let default = AddressPolicy::default();
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(refused(default, ip), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(!refused(default, ip), "{ip}");
        }
    }

    #[test]
    fn the_settings_allow_their_ranges_only() {
        let loopback = AddressPolicy {
            allow_loopback: true,
            ..AddressPolicy::default()
        };
        assert!(!refused(loopback, "127.0.0.1"));
        assert!(!refused(loopback, "::1"));
        assert!(!refused(loopback, "::ffff:127.0.0.1"));
        assert!(refused(loopback, "10.0.0.1"));
        assert!(refused(loopback, "169.254.169.254"));
        let private = AddressPolicy {
            allow_private: true,
            ..AddressPolicy::default()
        };
        assert!(!refused(private, "10.0.0.1"));
        assert!(!refused(private, "fd12::1"));
        assert!(refused(private, "127.0.0.1"));
        assert!(refused(private, "169.254.169.254"));
        assert!(refused(private, "fd00:ec2::254"));
    }

    #[tokio::test]
    async fn localhost_is_refused_after_resolution() {
        let err = AddressPolicy::default()
            .check_target("http://localhost:9/")
            .await
            .unwrap_err();
        assert!(matches!(err, Refused::Address { .. }), "{err}");
        AddressPolicy {
            allow_loopback: true,
            ..AddressPolicy::default()
        }
        .check_target("http://localhost:9/")
        .await
        .unwrap();
    }
}

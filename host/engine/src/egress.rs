//! Egress to endpoints a tenant chose: an integration's `api_base_url`
//! (LLM, providers) or SMTP host. The engine calls them from the service's
//! network, so a tenant could otherwise aim them at the service's own
//! neighbours — the database, a cloud metadata endpoint — and read answers
//! back in error details (SSRF).
//!
//! Two checks keep such calls on the public internet: an address written
//! in the URL is checked when the integration is saved
//! ([`check_endpoint`]), and an HTTP endpoint's name is checked each time
//! it is resolved ([`PublicResolver`]), so a name that later points inward
//! (DNS rebinding) is refused at connect time; SMTP (lettre) resolves on
//! its own, so its host is checked at save only. Redirects are not
//! followed.
//! `STRATAGEM_ALLOW_PRIVATE_ENDPOINTS=1` lifts both, for tests and for
//! on-premise endpoints on a private network.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Whether the operator allowed private endpoints
/// (`STRATAGEM_ALLOW_PRIVATE_ENDPOINTS=1`), read once.
pub fn private_endpoints_allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var("STRATAGEM_ALLOW_PRIVATE_ENDPOINTS").is_ok_and(|value| value == "1" || value == "true"))
}

/// An address on the public internet: not loopback, private, link-local,
/// shared (CGNAT), unspecified, multicast, broadcast, documentation or
/// reserved space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Checks an endpoint URL or SMTP host as a tenant saves it: an address
/// written in it must be public, and `localhost` is refused, unless
/// `allow_private`. Names are checked again whenever they are resolved.
pub fn check_endpoint(endpoint: &str, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let host = match url::Url::parse(endpoint) {
        Ok(url) => url.host_str().unwrap_or_default().to_owned(),
        // An SMTP host is a bare name or address.
        Err(_) => endpoint.trim().to_owned(),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let private = match host.parse::<IpAddr>() {
        Ok(ip) => !is_public(ip),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    };
    if private {
        return Err(format!(
            "`{host}` is a private or local address, which integrations may not reach; use the endpoint's public address \
             (an operator can allow private endpoints with STRATAGEM_ALLOW_PRIVATE_ENDPOINTS=1)"
        ));
    }
    Ok(())
}

/// Resolves names and keeps only public addresses; a name with none left
/// fails to connect with the reason.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found.into_iter().filter(|address| allow_private || is_public(address.ip())).collect();
            if usable.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("`{host}` resolves only to private or local addresses, which integrations may not reach").into();
                return Err(refused);
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client for tenant-chosen endpoints.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .dns_resolver(Arc::new(PublicResolver { allow_private: private_endpoints_allowed() }))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_an_endpoint_is_public() {
        for endpoint in ["https://api.openai.com/v1", "https://93.184.216.34/x", "http://[2606:4700::1111]/", "smtp.example.com"] {
            assert_eq!(check_endpoint(endpoint, false), Ok(()), "{endpoint}");
        }
    }

    #[test]
    fn errors_when_an_endpoint_is_private_unless_allowed() {
        for endpoint in [
            "http://127.0.0.1:5432",
            "http://10.0.0.7/v1",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080",
            "http://[fd00::1]/",
            "http://[::ffff:192.168.1.1]/",
            "http://100.64.0.1/",
            "http://localhost:11434/v1",
            "192.168.0.10",
        ] {
            let refused = check_endpoint(endpoint, false).expect_err(endpoint);
            assert!(refused.contains("private or local address"), "{refused}");
            assert_eq!(check_endpoint(endpoint, true), Ok(()), "allowed: {endpoint}");
        }
    }

    #[tokio::test]
    async fn errors_when_a_name_resolves_only_inward() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        let refused = PublicResolver { allow_private: false }.resolve(name).await.err().expect("refused").to_string();
        assert!(refused.contains("resolves only to private or local addresses"), "{refused}");
        let name: reqwest::dns::Name = "localhost".parse().expect("name");
        assert!(PublicResolver { allow_private: true }.resolve(name).await.is_ok());
    }
}

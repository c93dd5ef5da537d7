//! Egress to endpoints a tenant chose: an integration's `api_base_url`
//! (LLM, providers) or SMTP host, and the hosts on a strategy's HTTP
//! allowlist. The service calls them from its own network, so a tenant
//! could otherwise aim them at the service's neighbours — the database, a
//! cloud metadata endpoint — and read answers back (SSRF).
//!
//! Two checks keep such calls on the public internet: an address written
//! in the URL is checked ([`check_endpoint`]) when an integration is saved
//! and before each request a strategy makes, and an HTTP endpoint's name
//! is checked each time it is resolved ([`PublicResolver`]), so a name
//! that later points inward (DNS rebinding) is refused at connect time;
//! SMTP (lettre) resolves on its own, so its host is checked at save only.
//! Clients of the policy follow no redirects on their own.
//! [`EgressPolicy::allow_private_endpoints`] (the operator's
//! `--allow-private-endpoints`) lifts both, for tests and for on-premise
//! endpoints on a private network.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Which addresses outbound connections may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EgressPolicy {
    /// Private and local addresses too, not only public ones.
    pub allow_private_endpoints: bool,
}

impl EgressPolicy {
    /// [`check_endpoint`] under this policy.
    pub fn check_endpoint(&self, endpoint: &str) -> Result<(), String> {
        check_endpoint(endpoint, self.allow_private_endpoints)
    }

    /// A client builder whose resolver applies this policy and which
    /// follows no redirects (a redirect is a new endpoint to check).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(PublicResolver { allow_private: self.allow_private_endpoints }))
            .redirect(reqwest::redirect::Policy::none())
    }

    /// The HTTP client for tenant-chosen endpoints.
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        self.client_builder().timeout(timeout).connect_timeout(Duration::from_secs(10)).build().unwrap_or_default()
    }
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
            "`{host}` is a private or local address, which integrations and strategies may not reach; use the endpoint's \
             public address (an operator can allow private endpoints with --allow-private-endpoints)"
        ));
    }
    Ok(())
}

/// The addresses `host` resolves to that outbound connections may reach:
/// public ones, or all when `allow_private`. `Err` says why none is left.
pub async fn reachable_addresses(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let found: Vec<SocketAddr> =
        tokio::net::lookup_host((host, port)).await.map_err(|error| format!("`{host}` does not resolve: {error}"))?.collect();
    let usable: Vec<SocketAddr> = found.into_iter().filter(|address| allow_private || is_public(address.ip())).collect();
    if usable.is_empty() {
        return Err(format!("`{host}` resolves only to private or local addresses, which integrations and strategies may not reach"));
    }
    Ok(usable)
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
            let usable = reachable_addresses(name.as_str(), 0, allow_private).await?;
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
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

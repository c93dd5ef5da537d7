//! A campaign's HTTP allowlist: the hosts its strategies may call
//! (Settings > External APIs). Each entry is a host name (`api.example.com`),
//! optionally with a port (`api.example.com:8443`), or a leading wildcard
//! for a domain's subdomains (`*.example.com`); an IP address only as
//! itself. The egress policy still refuses private and local addresses at
//! every connect, whatever the list says.

use crate::FieldError;

/// Entries a campaign may list.
pub const MAX_HOSTS: usize = 50;

/// The entries, trimmed and lowercased, or every problem at once, each on
/// `http_allowlist[i]` with what to write instead.
pub fn parse(entries: &[String]) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut hosts: Vec<String> = Vec::with_capacity(entries.len());
    if entries.len() > MAX_HOSTS {
        errors.push(FieldError::new("http_allowlist", format!("lists {} hosts; a campaign may list at most {MAX_HOSTS}", entries.len())));
    }
    for (index, entry) in entries.iter().enumerate() {
        let field = format!("http_allowlist[{index}]");
        let host = entry.trim().to_ascii_lowercase();
        match check(&host) {
            Err(message) => errors.push(FieldError::new(field, message)),
            Ok(()) if hosts.contains(&host) => errors.push(FieldError::new(field, format!("`{host}` is listed twice"))),
            Ok(()) => hosts.push(host),
        }
    }
    if errors.is_empty() {
        Ok(hosts)
    } else {
        Err(errors)
    }
}

fn check(entry: &str) -> Result<(), String> {
    const EXAMPLE: &str = "write a host such as api.example.com, optionally with a port (api.example.com:8443), or *.example.com for its subdomains";
    if entry.is_empty() {
        return Err(format!("is empty; {EXAMPLE}"));
    }
    if let Some((_, rest)) = entry.split_once("://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        return Err(format!("`{entry}` is a URL; write its host only: {host}"));
    }
    if entry.contains(['/', '?', '#', '@', ' ', '\t']) {
        return Err(format!("`{entry}` is not a host name; {EXAMPLE}"));
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (entry, None),
    };
    if let Some(port) = port {
        if !port.parse::<u16>().is_ok_and(|port| port > 0) {
            return Err(format!("the port of `{entry}` must be a number from 1 to 65535"));
        }
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, host),
    };
    if name.contains('*') {
        return Err(format!("`{entry}`: `*` may only begin a name, as in *.example.com"));
    }
    if wildcard && name.split('.').count() < 2 {
        return Err(format!("`{entry}` would allow every host of `.{name}`; name the domain, as in *.example.com"));
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return if wildcard { Err(format!("`{entry}`: an IP address takes no wildcard")) } else { Ok(()) };
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("`{entry}` is not a host name: use letters, digits and - between dots; {EXAMPLE}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> Result<Vec<String>, Vec<String>> {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        parse(&entries).map_err(|errors| errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect())
    }

    #[test]
    fn works_when_hosts_ports_and_wildcards_are_listed() {
        assert_eq!(
            hosts(&[" API.Example.com ", "crm.example.com:8443", "*.example.org", "203.0.113.7"]),
            Ok(vec!["api.example.com".into(), "crm.example.com:8443".into(), "*.example.org".into(), "203.0.113.7".into()])
        );
        assert_eq!(hosts(&[]), Ok(vec![]));
    }

    #[test]
    fn errors_when_an_entry_is_not_a_host() {
        let errors = hosts(&["https://api.example.com/v1/users", "api.example.com:0", "*.com", "api.*.com", "bad_host.com", "", "a.com", "A.com"])
            .expect_err("invalid");
        assert_eq!(errors, [
            "http_allowlist[0]: `https://api.example.com/v1/users` is a URL; write its host only: api.example.com",
            "http_allowlist[1]: the port of `api.example.com:0` must be a number from 1 to 65535",
            "http_allowlist[2]: `*.com` would allow every host of `.com`; name the domain, as in *.example.com",
            "http_allowlist[3]: `api.*.com`: `*` may only begin a name, as in *.example.com",
            "http_allowlist[4]: `bad_host.com` is not a host name: use letters, digits and - between dots; write a host such as api.example.com, optionally with a port (api.example.com:8443), or *.example.com for its subdomains",
            "http_allowlist[5]: is empty; write a host such as api.example.com, optionally with a port (api.example.com:8443), or *.example.com for its subdomains",
            "http_allowlist[7]: `a.com` is listed twice",
        ]);
        let many: Vec<String> = (0..=MAX_HOSTS).map(|i| format!("h{i}.example.com")).collect();
        assert_eq!(parse(&many).expect_err("too many")[0].message, "lists 51 hosts; a campaign may list at most 50");
    }
}

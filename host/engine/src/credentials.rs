//! The credentials strategies call their customers' APIs with: a
//! tenant's HTTP_API integrations, found by name when a strategy asks for
//! one (`http.get(url, auth="crm")`), their sealed value opened only here.

use std::future::Future;
use std::pin::Pin;

use stratagem_domain::IntegrationKind;
use stratagem_runtime::{Credential, Credentials};
use stratagem_store::Store;

/// One tenant's integrations: another tenant's are never found.
pub struct TenantCredentials {
    pub store: Store,
    pub tenant: String,
}

impl TenantCredentials {
    async fn find(&self, name: &str) -> Result<Credential, String> {
        let unavailable = |error: stratagem_store::StoreError| format!("its integration could not be read ({error}); try again");
        let integrations = self.store.integrations().list_integrations(&self.tenant).await.map_err(unavailable)?;
        let named: Vec<_> = integrations.iter().filter(|i| i.kind == IntegrationKind::HttpApi && i.name == name).collect();
        let integration = match named.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "no HTTP_API integration is named `{name}`; add one under Integrations (External API) with the API's base URL and key"
                ))
            }
            several => return Err(format!("{} HTTP_API integrations are named `{name}`; rename all but one", several.len())),
        };
        let setting = |key: &str| integration.settings.get(key).and_then(serde_json::Value::as_str);
        let base_url = setting("base_url").unwrap_or_default();
        let base_url = url::Url::parse(base_url).map_err(|error| format!("its base URL `{base_url}` is not a URL ({error}); fix it under Integrations"))?;
        let secrets = self.store.integrations().integration_secrets(&self.tenant, &integration.id).await.map_err(unavailable)?;
        let value = secrets.get("header_value").and_then(serde_json::Value::as_str).ok_or("its header value is not set; set it under Integrations")?;
        Ok(Credential { base_url, header: setting("header").unwrap_or("Authorization").to_owned(), value: value.to_owned() })
    }
}

impl Credentials for TenantCredentials {
    fn credential<'a>(&'a self, integration: &'a str) -> Pin<Box<dyn Future<Output = Result<Credential, String>> + Send + 'a>> {
        Box::pin(self.find(integration))
    }
}

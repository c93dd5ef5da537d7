//! The one way the UI talks to the service: `fetch` with the signed-in
//! API key, every error turned into the API's problem document.

use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

const KEY: &str = "stratagem-key";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

pub fn stored_key() -> Option<String> {
    storage()?.get_item(KEY).ok()?.filter(|key| !key.is_empty())
}

pub fn store_key(key: &str) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(KEY, key);
    }
}

pub fn clear_key() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(KEY);
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub column: Option<u64>,
}

/// An RFC 9457 problem document as the API sends it (status 0: the
/// request did not reach the service).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub column: Option<u64>,
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

impl Problem {
    fn network(error: JsValue) -> Problem {
        Problem { detail: format!("the service could not be reached: {}", describe(&error)), ..Problem::default() }
    }

    /// The errors of one field (`settings.email_subject`, `alternatives[0].weight`…).
    pub fn field(&self, name: &str) -> Vec<String> {
        self.errors.iter().filter(|e| e.field == name).map(|e| e.message.clone()).collect()
    }
}

fn describe(error: &JsValue) -> String {
    error.as_string().or_else(|| error.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message()))).unwrap_or_else(|| format!("{error:?}"))
}

pub enum Body {
    Empty,
    Json(Value),
    /// A file or text with its content type.
    Raw(JsValue, String),
}

async fn send(method: &str, path: &str, body: Body) -> Result<web_sys::Response, Problem> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(Problem::network)?;
    if let Some(key) = stored_key() {
        headers.set("Authorization", &format!("Bearer {key}")).map_err(Problem::network)?;
    }
    match body {
        Body::Empty => {}
        Body::Json(value) => {
            headers.set("Content-Type", "application/json").map_err(Problem::network)?;
            init.set_body(&JsValue::from_str(&value.to_string()));
        }
        Body::Raw(data, content_type) => {
            headers.set("Content-Type", &content_type).map_err(Problem::network)?;
            init.set_body(&data);
        }
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(path, &init).map_err(Problem::network)?;
    let window = web_sys::window().ok_or_else(|| Problem { detail: "no window".into(), ..Problem::default() })?;
    let response = JsFuture::from(window.fetch_with_request(&request)).await.map_err(Problem::network)?;
    let response: web_sys::Response = response.dyn_into().map_err(Problem::network)?;
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let text = text_of(&response).await.unwrap_or_default();
    let mut problem: Problem = serde_json::from_str(&text).unwrap_or_else(|_| Problem {
        detail: if text.is_empty() { response.status_text() } else { text },
        ..Problem::default()
    });
    problem.status = status;
    Err(problem)
}

async fn text_of(response: &web_sys::Response) -> Result<String, Problem> {
    let text = JsFuture::from(response.text().map_err(Problem::network)?).await.map_err(Problem::network)?;
    Ok(text.as_string().unwrap_or_default())
}

/// JSON in, JSON out; 204 gives `null`.
pub async fn call(method: &str, path: &str, body: Body) -> Result<Value, Problem> {
    let response = send(method, path, body).await?;
    if response.status() == 204 {
        return Ok(Value::Null);
    }
    let text = text_of(&response).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub async fn get(path: &str) -> Result<Value, Problem> {
    call("GET", path, Body::Empty).await
}

pub async fn post(path: &str, body: Value) -> Result<Value, Problem> {
    call("POST", path, Body::Json(body)).await
}

pub async fn put(path: &str, body: Value) -> Result<Value, Problem> {
    call("PUT", path, Body::Json(body)).await
}

pub async fn delete(path: &str) -> Result<Value, Problem> {
    call("DELETE", path, Body::Empty).await
}

/// Downloads a file the API serves (the key travels in a header, so a plain
/// link cannot do it) and hands it to the browser under `file_name`.
pub async fn download(path: &str, file_name: &str) -> Result<(), Problem> {
    let response = send("GET", path, Body::Empty).await?;
    let blob = JsFuture::from(response.blob().map_err(Problem::network)?).await.map_err(Problem::network)?;
    let blob: web_sys::Blob = blob.dyn_into().map_err(Problem::network)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(Problem::network)?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or_else(Problem::default)?;
    let anchor: web_sys::HtmlAnchorElement =
        document.create_element("a").map_err(Problem::network)?.dyn_into().map_err(|e| Problem::network(e.into()))?;
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// A file chosen in an `<input type=file>`, read as text.
pub async fn file_text(file: &web_sys::File) -> Result<String, Problem> {
    let text = JsFuture::from(file.text()).await.map_err(Problem::network)?;
    Ok(text.as_string().unwrap_or_default())
}

pub fn enc(part: &str) -> String {
    String::from(js_sys::encode_uri_component(part))
}

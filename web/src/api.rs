//! The one way the UI talks to the service: `fetch` with the signed-in
//! API key, every error turned into the API's problem document.

use serde::de::DeserializeOwned;
use serde::Serialize;
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

pub use stratagem_types::Problem;

/// The request did not reach the service (status 0).
fn network(error: JsValue) -> Problem {
    Problem { detail: format!("the service could not be reached: {}", describe(&error)), ..Problem::default() }
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
    let headers = web_sys::Headers::new().map_err(network)?;
    if let Some(key) = stored_key() {
        headers.set("Authorization", &format!("Bearer {key}")).map_err(network)?;
    }
    match body {
        Body::Empty => {}
        Body::Json(value) => {
            headers.set("Content-Type", "application/json").map_err(network)?;
            init.set_body(&JsValue::from_str(&value.to_string()));
        }
        Body::Raw(data, content_type) => {
            headers.set("Content-Type", &content_type).map_err(network)?;
            init.set_body(&data);
        }
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(path, &init).map_err(network)?;
    let window = web_sys::window().ok_or_else(|| Problem { detail: "no window".into(), ..Problem::default() })?;
    let response = JsFuture::from(window.fetch_with_request(&request)).await.map_err(network)?;
    let response: web_sys::Response = response.dyn_into().map_err(network)?;
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
    let text = JsFuture::from(response.text().map_err(network)?).await.map_err(network)?;
    Ok(text.as_string().unwrap_or_default())
}

/// JSON in, the answer read as `T` (a type of `stratagem_types`); 204
/// reads as `null`. An answer that is not a `T` is a problem too.
pub async fn call<T: DeserializeOwned>(method: &str, path: &str, body: Body) -> Result<T, Problem> {
    let response = send(method, path, body).await?;
    let text = if response.status() == 204 { "null".to_owned() } else { text_of(&response).await? };
    serde_json::from_str(&text).map_err(|error| Problem {
        status: response.status(),
        detail: format!("the service answered {path} with what this page cannot read: {error}"),
        ..Problem::default()
    })
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Problem> {
    call("GET", path, Body::Empty).await
}

pub async fn post<T: DeserializeOwned>(path: &str, body: &impl Serialize) -> Result<T, Problem> {
    call("POST", path, json(body)?).await
}

pub async fn put<T: DeserializeOwned>(path: &str, body: &impl Serialize) -> Result<T, Problem> {
    call("PUT", path, json(body)?).await
}

/// Answers nothing the caller reads (204, or the deleted row).
pub async fn delete(path: &str) -> Result<(), Problem> {
    call::<serde::de::IgnoredAny>("DELETE", path, Body::Empty).await.map(|_| ())
}

fn json(body: &impl Serialize) -> Result<Body, Problem> {
    serde_json::to_value(body).map(Body::Json).map_err(|error| Problem { detail: error.to_string(), ..Problem::default() })
}

/// Downloads a file the API serves (the key travels in a header, so a plain
/// link cannot do it) and hands it to the browser under `file_name`.
pub async fn download(path: &str, file_name: &str) -> Result<(), Problem> {
    let response = send("GET", path, Body::Empty).await?;
    let blob = JsFuture::from(response.blob().map_err(network)?).await.map_err(network)?;
    let blob: web_sys::Blob = blob.dyn_into().map_err(network)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(network)?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or_else(Problem::default)?;
    let anchor: web_sys::HtmlAnchorElement =
        document.create_element("a").map_err(network)?.dyn_into().map_err(|e| network(e.into()))?;
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// A file chosen in an `<input type=file>`, read as text.
pub async fn file_text(file: &web_sys::File) -> Result<String, Problem> {
    let text = JsFuture::from(file.text()).await.map_err(network)?;
    Ok(text.as_string().unwrap_or_default())
}

pub fn enc(part: &str) -> String {
    String::from(js_sys::encode_uri_component(part))
}

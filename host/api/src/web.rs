//! The web UI: the build of `web/dist` embedded in the binary (or, for UI
//! development, a directory the operator names) served at `/`, every path
//! that is not a file answered with `index.html` so the app's own routes
//! survive a reload. `/api/…` paths that no route matches stay problem
//! documents. Files are revalidated on every load (`no-cache`) against an
//! ETag of their content, so a new release is never mixed with a cached one
//! and an unchanged file costs a 304.
//!
//! Every response of the UI carries a Content-Security-Policy: scripts only
//! from this origin (plus `'wasm-unsafe-eval'`, which compiling the app's
//! WebAssembly needs), styles only from `style.css` (no inline `style`
//! attributes or `<style>` elements; the app sets colours through the
//! CSSOM, which the policy allows), requests only to this origin, no
//! plugins, no `<base>`, and no framing by other sites. The app is booted
//! by `boot.js`, never by an inline script.

use std::convert::Infallible;
use std::path::PathBuf;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::ApiError;

/// Where the UI's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiFiles {
    /// The UI built into the binary (`make web` before `cargo build`).
    Embedded,
    /// A directory read on each request (STRATAGEM_WEB_DIR).
    Directory(PathBuf),
}

#[cfg(embedded_ui)]
static EMBEDDED: Option<&include_dir::Dir<'static>> = Some(&include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../web/dist"));
#[cfg(not(embedded_ui))]
static EMBEDDED: Option<&include_dir::Dir<'static>> = None;

/// Whether this binary carries the UI.
pub fn embedded() -> bool {
    EMBEDDED.is_some()
}

/// The policy of every UI response (see the module docs).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'";

fn secure(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stratagem</title></head>
<body>
<h1>Stratagem</h1>
<p>The API is running (<a href="/api/docs">/api/docs</a>), but this binary was built without the web UI.</p>
<p>Build the UI with <code>make web</code> and then the binary (<code>make run</code> does both), or point
<code>STRATAGEM_WEB_DIR</code> at a built <code>web/dist</code> directory, then reload this page.</p>
</body></html>"#;

/// The router's fallback: the UI for every path outside `/api`.
pub fn service(
    files: UiFiles,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future = impl Send> + Clone + Send + Sync + 'static {
    tower::service_fn(move |request: Request| {
        let files = files.clone();
        async move {
            let path = request.uri().path();
            if path == "/api" || path.starts_with("/api/") {
                return Ok(ApiError::NotFound("route").into_response());
            }
            let mut response = match &files {
                UiFiles::Embedded => match EMBEDDED {
                    Some(dir) => embedded_file(dir, &request),
                    None => (StatusCode::OK, Html(NOT_BUILT)).into_response(),
                },
                UiFiles::Directory(dir) => directory_file(dir, request).await,
            };
            // Revalidate every time: a rebuilt UI must not mix with a cached one.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            secure(response.headers_mut());
            Ok(response)
        }
    })
}

/// A file of the embedded UI, or its `index.html` for any other path.
fn embedded_file(dir: &'static include_dir::Dir<'static>, request: &Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    let Some(file) = dir.get_file(if path.is_empty() { "index.html" } else { path }).or_else(|| dir.get_file("index.html")) else {
        return (StatusCode::OK, Html(NOT_BUILT)).into_response();
    };
    let etag = etag(file);
    let fresh = request.headers().get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()).is_some_and(|tags| {
        tags.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*")
    });
    let kind = mime_guess::from_path(file.path()).first_or_octet_stream();
    let headers = [(header::CONTENT_TYPE, kind.essence_str().to_owned()), (header::ETAG, etag)];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, file.contents()).into_response()
}

/// A file's ETag: a hash of its content, computed once per process (the
/// app's WebAssembly is megabytes).
fn etag(file: &'static include_dir::File<'static>) -> String {
    static TAGS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<&'static std::path::Path, String>>> =
        std::sync::LazyLock::new(Default::default);
    let mut tags = TAGS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tags.entry(file.path())
        .or_insert_with(|| format!("\"{}\"", &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(file.contents()))[..32]))
        .clone()
}

/// A file of the UI directory, or its `index.html` for any other path.
async fn directory_file(dir: &std::path::Path, request: Request) -> Response {
    let index = dir.join("index.html");
    if !index.is_file() {
        return (StatusCode::OK, Html(NOT_BUILT)).into_response();
    }
    match ServeDir::new(dir).fallback(ServeFile::new(&index)).oneshot(request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(error) => match error {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(dir: PathBuf, path: &str) -> (StatusCode, String, String) {
        let request = Request::builder().uri(path).body(axum::body::Body::empty()).expect("request");
        let response = service(UiFiles::Directory(dir)).oneshot(request).await.expect("infallible");
        let status = response.status();
        let kind = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn works_when_files_are_served_and_other_paths_get_the_app() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("index.html"), "<html>app</html>").expect("index");
        std::fs::write(dir.path().join("style.css"), "body{}").expect("css");
        let (status, kind, body) = get(dir.path().into(), "/style.css").await;
        assert_eq!((status, kind.as_str(), body.as_str()), (StatusCode::OK, "text/css", "body{}"));
        for path in ["/", "/campaigns/cmp_1", "/campaigns/cmp_1/contacts/P1"] {
            let (status, _, body) = get(dir.path().into(), path).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "<html>app</html>"), "{path}");
        }
    }

    #[tokio::test]
    async fn errors_as_problem_json_when_an_api_path_has_no_route() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("index.html"), "<html>app</html>").expect("index");
        let (status, kind, body) = get(dir.path().into(), "/api/nothing-here").await;
        assert_eq!((status, kind.as_str()), (StatusCode::NOT_FOUND, "application/problem+json"));
        assert!(body.contains("route not found"), "{body}");
    }

    async fn headers(dir: PathBuf, path: &str) -> HeaderMap {
        let request = Request::builder().uri(path).body(axum::body::Body::empty()).expect("request");
        service(UiFiles::Directory(dir)).oneshot(request).await.expect("infallible").headers().clone()
    }

    #[tokio::test]
    async fn works_when_every_ui_response_carries_the_security_headers() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("index.html"), "<html>app</html>").expect("index");
        std::fs::write(dir.path().join("boot.js"), "import init from '/stratagem_web.js';").expect("js");
        let expected = [
            (
                "content-security-policy",
                "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; \
                 img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'",
            ),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
        ];
        let not_built = dir.path().join("missing");
        for (dir, path) in [(dir.path().to_path_buf(), "/"), (dir.path().into(), "/boot.js"), (dir.path().into(), "/campaigns/cmp_1"), (not_built, "/")] {
            let headers = headers(dir, path).await;
            for (name, value) in expected {
                assert_eq!(headers.get(name).and_then(|v| v.to_str().ok()), Some(value), "{name} of {path}");
            }
        }
    }

    #[test]
    fn works_when_the_shipped_index_html_has_no_inline_script_or_style() {
        let index = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/static/index.html")).expect("web/static/index.html");
        for tag in index.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            if tag.starts_with("script") {
                assert!(tag.contains("src="), "an inline <{tag}> is blocked by the CSP; load it from a file");
            }
            assert!(!tag.starts_with("style") && !tag.contains("style="), "inline styles are blocked by the CSP: <{tag}>");
            assert!(!tag.contains(" on"), "inline event handlers are blocked by the CSP: <{tag}>");
        }
    }

    /// `make test` builds the UI before the binaries, so they carry it.
    #[tokio::test]
    async fn works_when_the_embedded_ui_is_served_with_its_types_and_etags() {
        assert!(embedded(), "web/dist was not built when this crate was: run `make web`");
        let call = |path: &str, tag: Option<&str>| {
            let mut request = Request::builder().uri(path);
            if let Some(tag) = tag {
                request = request.header(header::IF_NONE_MATCH, tag);
            }
            service(UiFiles::Embedded).oneshot(request.body(axum::body::Body::empty()).expect("request"))
        };
        let index = call("/campaigns/cmp_1", None).await.expect("infallible");
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html");
        assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(index.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let body = axum::body::to_bytes(index.into_body(), 1 << 20).await.expect("body");
        assert!(String::from_utf8_lossy(&body).contains("boot.js"), "the app's index.html");
        let wasm = call("/stratagem_web_bg.wasm", None).await.expect("infallible");
        assert_eq!(wasm.headers()[header::CONTENT_TYPE], "application/wasm");
        let etag = wasm.headers()[header::ETAG].to_str().expect("etag").to_owned();
        let again = call("/stratagem_web_bg.wasm", Some(&etag)).await.expect("infallible");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "an unchanged file is not sent again");
        let changed = call("/stratagem_web_bg.wasm", Some("\"other\"")).await.expect("infallible");
        assert_eq!(changed.status(), StatusCode::OK);
        assert_eq!(call("/style.css", None).await.expect("infallible").headers()[header::CONTENT_TYPE], "text/css");
    }

    #[tokio::test]
    async fn works_when_the_ui_is_not_built_with_a_page_saying_how() {
        let dir = tempfile::tempdir().expect("dir");
        let (status, _, body) = get(dir.path().join("missing"), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("make web"), "{body}");
    }
}

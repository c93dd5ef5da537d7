//! The web UI: the built `web/dist` (or the directory the operator names)
//! served at `/`,
//! every path that is not a file answered with `index.html` so the app's
//! own routes survive a reload. `/api/…` paths that no route matches stay
//! problem documents.
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

/// Where the UI is built to by default (`make web`).
pub const DEFAULT_DIRECTORY: &str = "web/dist";

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
<p>The API is running (<a href="/api/docs">/api/docs</a>), but the web UI has not been built.</p>
<p>Build it with <code>make web</code> (or run <code>make run</code>, which builds it first), or point
<code>STRATAGEM_WEB_DIR</code> at a built <code>web/dist</code> directory, then reload this page.</p>
</body></html>"#;

/// The router's fallback: the UI for every path outside `/api`.
pub fn service(
    dir: PathBuf,
) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future = impl Send> + Clone + Send + Sync + 'static {
    let index = dir.join("index.html");
    let files = ServeDir::new(&dir).fallback(ServeFile::new(&index));
    tower::service_fn(move |request: Request| {
        let files = files.clone();
        let built = index.is_file();
        async move {
            let path = request.uri().path();
            if path == "/api" || path.starts_with("/api/") {
                return Ok(ApiError::NotFound("route").into_response());
            }
            if !built {
                let mut response = (StatusCode::OK, Html(NOT_BUILT)).into_response();
                secure(response.headers_mut());
                return Ok(response);
            }
            let mut response = match files.oneshot(request).await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(error) => match error {},
            };
            // Revalidate every time: a rebuilt UI must not mix with a cached one.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            secure(response.headers_mut());
            Ok(response)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(dir: PathBuf, path: &str) -> (StatusCode, String, String) {
        let request = Request::builder().uri(path).body(axum::body::Body::empty()).expect("request");
        let response = service(dir).oneshot(request).await.expect("infallible");
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
        service(dir).oneshot(request).await.expect("infallible").headers().clone()
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

    #[tokio::test]
    async fn works_when_the_ui_is_not_built_with_a_page_saying_how() {
        let dir = tempfile::tempdir().expect("dir");
        let (status, _, body) = get(dir.path().join("missing"), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("make web"), "{body}");
    }
}

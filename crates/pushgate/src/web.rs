//! The pages of `web/` (the browser client and the demos), served at `/` for every path no
//! other route takes.
//!
//! By default they are compiled into the binary ([`Embedded`]), so a release binary serves them
//! with nothing beside it; with [`Pages::web_dir`](crate::config::Pages::web_dir) they are read from
//! that directory at each request instead, so edits show on reload during development.
//!
//! - `GET /` and any path ending in `/` serve that directory's `index.html`.
//! - The `Content-Type` follows the extension ([`content_type`]).
//! - Every answer carries `Cache-Control: no-cache` and an `ETag` (the file's SHA-256 when
//!   embedded, its size and modification time when read from disk): the browser revalidates on
//!   each load and an unchanged file costs a `304 Not Modified` without a body.
//! - A path is looked up only when every segment is a plain name ([`relative_path`]): no `..`
//!   or `.` segment, no segment starting with a dot, no backslash, no empty segment, also once
//!   percent-decoded. `web/tests/` and `node_modules/` folders are not part of the site and are
//!   never served.
//! - Anything else is the JSON `404 not_found` of the other routes; a file asked with a method
//!   other than `GET` or `HEAD` is `405 method_not_allowed`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use rust_embed::RustEmbed;

use crate::api;

/// `web/` as compiled into the binary, without its browser tests and what npm leaves beside the
/// client package (installed dependencies, generated type declarations, packed tarballs).
#[derive(RustEmbed)]
#[folder = "../../web/"]
#[exclude = "tests/**"]
#[exclude = "**/node_modules/**"]
#[exclude = "client/types/**"]
#[exclude = "**/*.tgz"]
struct Embedded;

/// Where the pages come from.
#[derive(Debug, Clone)]
pub(crate) enum Pages {
    /// The copy compiled into the binary.
    Embedded,
    /// A directory on disk, read at each request.
    Dir(Arc<Path>),
}

impl Pages {
    /// The pages of `dir` when given, else the embedded ones.
    pub(crate) fn new(dir: Option<&Path>) -> Self {
        dir.map_or(Self::Embedded, |dir| Self::Dir(Arc::from(dir)))
    }

    /// Answers a request that no other route took: a page, or the JSON 404.
    pub(crate) async fn serve(self, method: Method, uri: Uri, headers: HeaderMap) -> Response {
        let Some(path) = relative_path(uri.path()) else {
            return api::not_found(method, uri).await.into_response();
        };
        let Some(file) = self.load(&path).await else {
            return api::not_found(method, uri).await.into_response();
        };
        if method != Method::GET && method != Method::HEAD {
            let mut response = api::method_not_allowed(method, uri).await.into_response();
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        file.into_response(&path, &headers)
    }

    /// The file at `path` (already checked by [`relative_path`]), if there is one.
    async fn load(&self, path: &str) -> Option<File> {
        match self {
            Self::Embedded => {
                let file = Embedded::get(path)?;
                let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
                Some(File { body: Bytes::from(file.data.into_owned()), etag })
            }
            Self::Dir(root) => {
                let full: PathBuf = root.join(path);
                let metadata = tokio::fs::metadata(&full).await.ok()?;
                if !metadata.is_file() {
                    return None;
                }
                let body = tokio::fs::read(&full).await.ok()?;
                // Size and modification time change with every edit that matters, and cost no
                // hashing of the file.
                let modified = metadata
                    .modified()
                    .ok()
                    .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |since| since.as_nanos());
                let etag = format!("\"{:x}-{modified:x}\"", body.len());
                Some(File { body: Bytes::from(body), etag })
            }
        }
    }
}

/// A page to send.
struct File {
    body: Bytes,
    /// Quoted, ready for the `ETag` header.
    etag: String,
}

impl File {
    /// `200` with the file, or `304` when the request's `If-None-Match` names its tag.
    fn into_response(self, path: &str, request: &HeaderMap) -> Response {
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| etag_matches(value, &self.etag));
        let mut response = if fresh {
            (StatusCode::NOT_MODIFIED, Body::empty()).into_response()
        } else {
            let mut response = (StatusCode::OK, Body::from(self.body)).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Ok(etag) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, etag);
        }
        response
    }
}

/// The path below the pages' root that `uri_path` names, percent-decoded, with `index.html`
/// added for a directory; `None` when it is not a plain relative path (a `..` or `.` segment,
/// a hidden name, a backslash, an empty segment, a NUL, bytes that are not UTF-8) or lies
/// under `tests/` or a `node_modules/`.
pub(crate) fn relative_path(uri_path: &str) -> Option<String> {
    let decoded = percent_decode(uri_path.strip_prefix('/')?)?;
    let mut path = decoded;
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    let plain = |segment: &str| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && !segment.contains(['\\', '\0', ':'])
            && !segment.chars().any(char::is_control)
    };
    if !path.split('/').all(plain)
        || path.split('/').next() == Some("tests")
        || path.split('/').any(|segment| segment == "node_modules")
    {
        return None;
    }
    Some(path)
}

/// `text` with every `%XX` replaced by its byte; `None` for a malformed escape or a result
/// that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `Content-Type` for a file named `path`, by its extension; unknown ones are
/// `application/octet-stream`, which browsers do not run or render.
pub(crate) fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, extension)| extension.to_ascii_lowercase());
    match extension.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// Whether an `If-None-Match` value names `etag`, by weak comparison (`W/"x"` matches `"x"`).
/// `*` matches too: the file exists.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_looked_up() {
        assert_eq!(relative_path("/").as_deref(), Some("index.html"));
        assert_eq!(relative_path("/pushgate.js").as_deref(), Some("pushgate.js"));
        assert_eq!(relative_path("/images/a%20b.png").as_deref(), Some("images/a b.png"));
        assert_eq!(relative_path("/docs/").as_deref(), Some("docs/index.html"));
        assert_eq!(relative_path("/client/src/index.js").as_deref(), Some("client/src/index.js"));
        for bad in [
            "/../Cargo.toml",
            "/a/../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/..%2fCargo.toml",
            "/..%5cCargo.toml",
            "/./index.html",
            "/.git/config",
            "//etc/passwd",
            "/a//b",
            "/%00",
            "/%zz",
            "/%ff",
            "/C:/x",
            "/tests/run.mjs",
            "/tests/",
            "/client/node_modules/typescript/package.json",
            "/node_modules/x.js",
            "relative",
        ] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("pushgate.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("style.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("a/b.json"), "application/json");
        assert_eq!(content_type("logo.svg"), "image/svg+xml");
        assert_eq!(content_type("shot.png"), "image/png");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }

    #[test]
    fn the_binary_carries_the_pages_and_the_client_and_not_the_tests() {
        for page in
            ["index.html", "favicon.svg", "pushgate.js", "client/src/index.js", "client/src/shared.js"]
        {
            assert!(Embedded::get(page).is_some(), "{page} is embedded");
        }
        assert!(Embedded::iter().all(|name| !name.starts_with("tests/")
            && !name.contains("node_modules/")
            && !name.starts_with("client/types/")
            && !name.ends_with(".tgz")));
    }
}

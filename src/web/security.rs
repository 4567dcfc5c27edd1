//! The headers every response carries: a content security policy that allows the site's own
//! stylesheet and nothing else to run or load (no inline script or style, no framing, forms
//! posting only here), no referrer (the pages with a token in their address must not hand it
//! to the next site), no content sniffing, and no caching of pages unless a route says
//! otherwise (confirmation and unsubscribe pages show an address). A route that needs another
//! policy (an archived issue carries the inline styles mail clients want) sets its own header,
//! and that one is kept.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue, header},
    middleware::Next,
    response::Response,
};

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const FIXED: [(HeaderName, &str); 7] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    (HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    (HeaderName::from_static("permissions-policy"), "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
];

/// Adds the headers to every response; a route's own `Cache-Control` is kept, and so are its
/// own `Content-Security-Policy` (the archive's issue pages carry the digest's inline styles)
/// and `X-Frame-Options` (the dashboard's previews are framed by the dashboard).
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in FIXED {
        // A route's own policy and framing are kept: the dashboard frames its previews.
        if (name == header::CONTENT_SECURITY_POLICY || name == header::X_FRAME_OPTIONS) && h.contains_key(&name) {
            continue;
        }
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, routing::get};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn every_response_carries_the_headers_and_a_route_keeps_its_caching() {
        let app = Router::new()
            .route("/", get(|| async { "hi" }))
            .route(
                "/own",
                get(|| async {
                    (
                        [
                            (header::CACHE_CONTROL, "max-age=60"),
                            (header::CONTENT_SECURITY_POLICY, "default-src 'self'"),
                        ],
                        "x",
                    )
                }),
            )
            .layer(axum::middleware::from_fn(headers));
        let get = |uri: &'static str| {
            let app = app.clone();
            async move { app.oneshot(Request::get(uri).body(Body::empty()).expect("request")).await.expect("response") }
        };
        for uri in ["/", "/missing"] {
            let r = get(uri).await;
            let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
            for directive in ["default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"] {
                assert!(csp.contains(directive), "{uri}: {csp}");
            }
            assert!(!csp.contains("unsafe-inline"));
            assert_eq!(r.headers()[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        }
        let own = get("/own").await;
        assert_eq!(own.headers()[header::CACHE_CONTROL], "max-age=60");
        assert_eq!(own.headers()[header::CONTENT_SECURITY_POLICY], "default-src 'self'");
        assert_eq!(own.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}

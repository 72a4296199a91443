//! `GET /`: one self-contained page (HTML, CSS and JavaScript inline, no
//! request beyond this server's own `/metrics.json` and `/api/query`) that
//! shows the status line, the busiest counters with their rates, gauges in
//! their units, each histogram's p50 and p99 over time, and the plug-ins'
//! health, refreshed every two seconds.

use std::sync::{Arc, OnceLock};

use super::response::Response;

/// The page, as served.
pub(super) const PAGE: &str = include_str!("page.html");

/// Only this page's own inline code and this server may be reached: the
/// page works offline and a value that slipped into it as markup could not
/// load anything.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) fn page() -> Response {
    static BODY: OnceLock<Arc<String>> = OnceLock::new();
    let body = BODY.get_or_init(|| Arc::new(PAGE.to_owned()));
    Response::shared(200, "text/html; charset=utf-8", Arc::clone(body))
        .header("Content-Security-Policy", POLICY)
        .header("X-Content-Type-Options", "nosniff")
        .header("Cache-Control", "no-store")
}

//! What the demos share: the port they listen on and the page around their HTML.

use std::process::ExitCode;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` on 127.0.0.1 and the port in `PORT` (default 3000) until the process ends.
/// A port that is taken or malformed is a one-line message naming the fix, and exit code 1.
pub(crate) async fn serve(demo: &str, app: Router) -> ExitCode {
    let listener = match listen(demo, std::env::var("PORT").ok()).await {
        Ok(listener) => listener,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!("{demo} demo on http://{addr}"),
        Err(e) => tracing::warn!("{demo} demo listening (address unknown: {e})"),
    }
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{demo}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A listener on 127.0.0.1 and `port` (the value of `PORT`; default 3000), or the message
/// that tells the person what to do instead.
pub(crate) async fn listen(demo: &str, port: Option<String>) -> Result<TcpListener, String> {
    let port = match port {
        None => 3000,
        Some(value) => value
            .parse::<u16>()
            .map_err(|_| format!("{demo}: PORT={value:?} is not a port number (0 to 65535)"))?,
    };
    TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        format!(
            "{demo}: cannot listen on 127.0.0.1:{port} ({e}); another program may hold it: \
             run with PORT set to a free port, e.g. PORT={} cargo run --example {demo}",
            port.saturating_add(1)
        )
    })
}

/// Logs to stderr at `info` unless `RUST_LOG` says otherwise.
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// A whole HTML page: `lang`, a viewport, a title and `body` (already escaped).
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=en>\n<head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>{} · sessionbase</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}\
         label{{display:block;margin:.5rem 0}}.error{{color:#a40000;font-weight:bold}}\
         table{{border-collapse:collapse}}td,th{{padding:.25rem .75rem;text-align:left}}</style>\
         </head>\n<body>\n<h1>{}</h1>\n{body}\n</body>\n</html>\n",
        escape(title),
        escape(title),
    )
}

/// `text` safe inside HTML text and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

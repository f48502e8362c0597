//! Serving the router over TLS: accept (at most `MAX_CONNECTIONS` at once), handshake, headers
//! and each request under deadlines, so a silent or trickling client cannot hold a slot, then
//! HTTP/1.1 or HTTP/2 (a bounded number of streams) with keep-alive per connection. On shutdown
//! it stops accepting and lets connections finish what is in flight.

use std::{future::Future, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use rustls::ServerConfig;
use tokio::net::TcpListener;

use crate::{service::Admission, workers::Workers};

/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a client may take to send a request's headers, and longest an idle keep-alive
/// connection is kept (the API server reuses its connections well within this).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a request may take, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; more are closed on accept (the API server needs a few per replica).
pub const MAX_CONNECTIONS: usize = 256;
/// HTTP/2 streams at once on one connection.
pub const MAX_STREAMS: u32 = 32;
/// Bytes read from a connection's socket at once: a whole TLS record (at most 18,437 bytes on
/// the wire). rustls asks for 4 KiB at a time, so a 5 KB AdmissionReview took two `recvfrom`s
/// where nginx makes one `read` (strace under scripts/bench-webhook's load); with this buffer
/// it takes one, and the rest of the record is handed over from memory.
pub const READ_BUFFER: usize = 20 * 1024;

/// Serves `app` on `listener` with `tls` until `shutdown` completes, then drains. Connections are
/// accepted here and served on `workers`.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Admission,
    workers: &Workers,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A connection over the cap is closed at once: it cannot queue up memory or threads.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = MAX_CONNECTIONS, "too many connections; closing this one");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Handed over as a plain socket: it registers with the worker's own I/O driver.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot hand the connection to a worker");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        workers.spawn(async move {
            let _slot = slot;
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot register the connection");
                    return;
                }
            };
            let stream = tokio::io::BufReader::with_capacity(READ_BUFFER, stream);
            let tls_stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            // ALPN already chose the protocol: no sniffing of the first bytes.
            let alpn = tls_stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let alpn = alpn.as_deref();
            let mut builder = Builder::new(TokioExecutor::new());
            // One buffer per answer, so headers and body leave in one TLS record and one write.
            // Headers (and the wait for the next request on a kept-alive connection) are timed.
            builder.http1().writev(false).timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(MAX_STREAMS)
                .keep_alive_interval(HEADER_TIMEOUT)
                .keep_alive_timeout(HEADER_TIMEOUT);
            let builder = match alpn {
                Some(b"h2") => builder.http2_only(),
                Some(_) => builder.http1_only(),
                None => builder, // No ALPN: tell HTTP/2's preface from HTTP/1.1 by the first bytes.
            };
            let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timed out; closing the remaining connections"),
    }
}

/// Serves plain HTTP (the optional separate metrics port).
pub async fn serve_plain(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()> + Send + 'static) {
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::warn!(error = %e, "metrics server stopped");
    }
}

/// What a binary's `main` does around its work: logs (`RUST_LOG`, default info) to stderr, a
/// single-threaded runtime, and the error with its context as the exit message.
pub fn main_with(work: impl Future<Output = anyhow::Result<()>>) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => exit_code(runtime.block_on(work)),
        Err(e) => exit_code(Err(anyhow::anyhow!("cannot start the runtime: {e}"))),
    }
}

/// `error: ...` with the whole context on stderr and exit status 1, or success.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

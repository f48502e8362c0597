//! `vdi-status`: connects to the cluster like any client (in-cluster, else `KUBECONFIG`), serves
//! /healthz and /metrics, and runs the status writer until SIGTERM.

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use anyhow::Context;
use axum::{Router, routing::get};
use clap::Parser;
use vdi_webhook::{
    server,
    status::{StatusMetrics, writer},
};

/// Keeps the status of every VDISession (vdi.kasm.io) true from what the cluster shows about its
/// Pod: Pending (with the scheduler's reason), Creating (with pull failures and crash loops),
/// Running (with the URL), Terminating, Failed (timeout, eviction, out of memory, or the agent's
/// own reason from its termination message). Writes with server-side apply to the status
/// subresource (field manager vdi-status), only when something changed. Several replicas write
/// the same status.
#[derive(Parser)]
#[command(name = "vdi-status", version, max_term_width = 100)]
struct Cli {
    /// Address to serve /healthz and /metrics on (plain HTTP).
    #[arg(long, env = "VDI_STATUS_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await.context("connecting to the cluster (in-cluster or KUBECONFIG)")?;
    let metrics = Arc::new(StatusMetrics::new());
    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.with_context(|| format!("binding {}", cli.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz and /metrics");
    let m = metrics.clone();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { m.encode() }));
    tokio::spawn(server::serve_plain(listener, app, server::shutdown_signal()));
    tokio::select! {
        r = writer::run(client, metrics) => r.context("status writer"),
        () = server::shutdown_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

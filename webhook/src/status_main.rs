//! `vdi-status`: connects to the cluster like any client (in-cluster, else `KUBECONFIG`), serves
//! /healthz and /metrics, and runs the status writer until SIGTERM.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the status a session would get from a Pod (JSON or YAML, as `kubectl get pod -o
    /// json` shows it), without a cluster: `phase:` and `message:` lines, then the whole status as
    /// JSON. For checking what a Pod means, and for the rehearsal.
    Derive {
        /// The Pod.
        #[arg(long)]
        pod: PathBuf,
        /// The VDISession (default: one named after the Pod's session label, without a timeout).
        #[arg(long)]
        session: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Derive { pod, session }) = &cli.command {
        return server::exit_code(derive(pod, session.as_deref()));
    }
    server::main_with(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await.context("connecting to the cluster (in-cluster or KUBECONFIG)")?;
    let metrics = Arc::new(StatusMetrics::new());
    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.with_context(|| format!("binding {}", cli.listen))?;
    let (metrics_stop, stop) = (vdi_process::shutdown_signal(), vdi_process::shutdown_signal());
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz and /metrics");
    let m = metrics.clone();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { m.encode() }));
    tokio::spawn(server::serve_plain(listener, app, metrics_stop));
    tokio::select! {
        r = writer::run(client, metrics) => r.context("status writer"),
        () = stop => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

fn derive(pod: &std::path::Path, session: Option<&std::path::Path>) -> anyhow::Result<()> {
    let read = |p: &std::path::Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    // JSON is YAML; one parser reads both.
    let pod: k8s_openapi::api::core::v1::Pod =
        serde_saphyr::from_str(&read(pod)?).with_context(|| format!("{} is not a Pod", pod.display()))?;
    let session: vdi_crds::VDISession = match session {
        Some(p) => serde_saphyr::from_str(&read(p)?).with_context(|| format!("{} is not a VDISession", p.display()))?,
        None => {
            let name = pod.metadata.labels.as_ref().and_then(|l| l.get(vdi_crds::labels::SESSION)).cloned();
            let name = name.context("the Pod has no vdi.kasm.io/session label; pass --session")?;
            let mut s = vdi_crds::VDISession::new(
                &name,
                vdi_crds::VDISessionSpec {
                    user: String::new(),
                    template: String::new(),
                    resources: None,
                    timeout: None,
                },
            );
            s.metadata.namespace = pod.metadata.namespace.clone();
            s
        }
    };
    let status = vdi_webhook::status::derive(&session, Some(&pod));
    let phase = serde_json::to_value(status.phase)?;
    println!("phase: {}", phase.as_str().unwrap_or_default());
    println!("message: {}", status.message.as_deref().unwrap_or_default());
    println!("{}", serde_json::to_string(&status)?);
    Ok(())
}

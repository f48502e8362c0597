//! `vdi-webhook`: parses flags (each also an environment variable), loads templates and the
//! certificate, and serves the admission router over TLS until SIGTERM.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::Parser;
use vdi_webhook::{AppState, Metrics, Templates, app, metrics_app, server, tls, workers::Workers};

// Admission allocates many small, short-lived objects per request; mimalloc handles that
// pattern with less overhead than glibc's allocator (scripts/bench-webhook).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Mutating and validating admission webhook for VDI sessions (vdi.kasm.io): fills VDISession
/// defaults from their template, injects /dev/shm, /dev/dri, the GPU limit, the password and the
/// display environment into session Pods, gives session Secrets a random password, and rejects
/// unsafe or invalid objects. HTTPS only (TLS 1.2/1.3, HTTP/1.1 and HTTP/2); the certificate is
/// reloaded when its files change.
///
/// Endpoints: POST /mutate, POST /validate (AdmissionReview admission.k8s.io/v1), GET /healthz,
/// GET /readyz, GET /metrics (Prometheus).
#[derive(Parser)]
#[command(name = "vdi-webhook", version, max_term_width = 100)]
struct Cli {
    /// Address to serve HTTPS on.
    #[arg(long, env = "VDI_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// PEM certificate chain (for example /tls/tls.crt from a cert-manager Secret).
    #[arg(long, env = "VDI_WEBHOOK_TLS_CERT")]
    tls_cert: PathBuf,
    /// PEM private key.
    #[arg(long, env = "VDI_WEBHOOK_TLS_KEY")]
    tls_key: PathBuf,
    /// Read VDITemplates from these files or folders instead of watching the cluster.
    #[arg(long, env = "VDI_WEBHOOK_TEMPLATES", value_delimiter = ',')]
    templates: Vec<PathBuf>,
    /// Also serve /metrics over plain HTTP on this address (for scrapers without TLS).
    #[arg(long, env = "VDI_WEBHOOK_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Extended resource of one GPU: the same value as vdi-render's `gpu.resourceName` setting
    /// (`nvidia.com/gpu.shared` when the device plugin renames time-sliced GPUs).
    #[arg(long, env = "VDI_WEBHOOK_GPU_RESOURCE_NAME", default_value = vdi_crds::pod::GPU_RESOURCE)]
    gpu_resource_name: String,
    /// File holding the TURN REST shared secret (coturn's static-auth-secret), for example a
    /// mounted Secret: each session Secret then gets its own TURN credentials, valid until the
    /// session's deadline. The secret stays in the webhook's namespace.
    #[arg(long, env = "VDI_WEBHOOK_TURN_SHARED_SECRET_FILE")]
    turn_shared_secret_file: Option<PathBuf>,
    /// Let a person create a VDISession only for themselves (spec.user = their user name); the
    /// accounts in --gitops-accounts may create one for anybody. On by default.
    #[arg(long, env = "VDI_WEBHOOK_BIND_SESSION_USER", default_value_t = true, action = clap::ArgAction::Set)]
    bind_session_user: bool,
    /// The GitOps controllers' accounts (they apply what git says, for any user).
    #[arg(
        long,
        env = "VDI_WEBHOOK_GITOPS_ACCOUNTS",
        value_delimiter = ',',
        default_value = "system:serviceaccount:argocd:argocd-application-controller,system:serviceaccount:flux-system:kustomize-controller"
    )]
    gitops_accounts: Vec<String>,
    /// Threads serving connections, each with its own runtime [default: the CPUs this process
    /// may use].
    #[arg(long, env = "VDI_WEBHOOK_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Accepting, certificate and template watching run here; connections run on the workers.
    server::main_with(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let loaded = tls::load(&cli.tls_cert, &cli.tls_key).context("loading the serving certificate")?;
    metrics.cert_expiry.set(loaded.not_after);
    let resolver = Arc::new(tls::Resolver::new(loaded.key));
    let config = tls::server_config(resolver.clone())?;
    let _watcher = tls::watch(cli.tls_cert.clone(), cli.tls_key.clone(), resolver, metrics.clone())?;

    let templates = if cli.templates.is_empty() {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the cluster to watch VDITemplates (or pass --templates)")?;
        Templates::from_cluster(client)
    } else {
        let t = Templates::from_files(&cli.templates).context("reading --templates")?;
        if let Templates::Files(map) = &t {
            tracing::info!(templates = map.len(), "templates loaded from files");
        }
        t
    };
    let turn_secret = match &cli.turn_shared_secret_file {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let trimmed = bytes.trim_ascii().to_vec();
            anyhow::ensure!(!trimmed.is_empty(), "{} is empty: no TURN shared secret", path.display());
            Some(Arc::new(vdi_webhook::mutate::TurnSecret(trimmed)))
        }
    };
    tracing::info!(turn = turn_secret.is_some(), "session TURN credentials");
    let gitops_accounts = cli.bind_session_user.then(|| Arc::new(cli.gitops_accounts.clone()));
    let state = AppState {
        templates,
        metrics,
        gpu_resource: cli.gpu_resource_name.as_str().into(),
        turn_secret,
        gitops_accounts,
    };

    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.with_context(|| format!("binding {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(metrics_addr) = cli.metrics_listen {
        let ml =
            tokio::net::TcpListener::bind(metrics_addr).await.with_context(|| format!("binding {metrics_addr}"))?;
        tracing::info!(addr = %ml.local_addr()?, "serving plain-HTTP metrics");
        let mut rx = stop_rx.clone();
        tokio::spawn(server::serve_plain(ml, metrics_app(state.clone()), async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }));
    }
    let count = cli
        .workers
        .map_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get), usize::from);
    let workers = Workers::start(count).context("starting the worker threads")?;
    let stop = vdi_process::shutdown_signal();
    tracing::info!(%addr, workers = workers.len(), "listening (HTTPS)");
    server::serve_tls(listener, config, app(state), &workers, async move {
        stop.await;
        let _ = stop_tx.send(true);
    })
    .await;
    drop(workers);
    drop(stop_rx);
    Ok(())
}

//! `vdi-agent`: checks its settings (a password is mandatory), opens the display, chooses an
//! encoder that works, then serves the web client and signalling until SIGTERM.

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use clap::Parser;
use vdi_agent::{
    desktop::{Desktop, Features, audio, input},
    http,
    media::encoder,
    metrics::Metrics,
    session::Agent,
    settings::Settings,
};

fn main() -> ExitCode {
    let settings = Settings::parse();
    if std::env::var(vdi_crds::agent::env::DISPLAY).ok().as_deref() != Some(settings.display.as_str()) {
        // The clipboard library opens the display named by DISPLAY.
        #[allow(unsafe_code)]
        // SAFETY: nothing else runs yet: no thread has been started, so nobody reads the environment.
        unsafe {
            std::env::set_var("DISPLAY", &settings.display);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let log = settings.termination_log.clone();
    let fatal = |code: u8, msg: &dyn std::fmt::Display| fatal(&log, code, msg);
    if let Err(msg) = settings.password() {
        return fatal(2, &msg);
    }
    if let Err(e) = vdi_agent::init_gstreamer() {
        return fatal(1, &format_args!("GStreamer does not start: {e}"));
    }
    // The display must open (capture and input both need it). This connection stays open for
    // the agent's lifetime: it turned the server's auto-repeat off and puts it back at exit, and
    // it keeps an X server that resets when its last client leaves (Xvfb) from doing so.
    let display = match input::Injector::connect(&settings.display) {
        Ok(i) => i,
        Err(e) => return fatal(1, &format_args!("the display does not open: {e}")),
    };
    let size = display.size();
    let chosen = match encoder::probe_codecs(settings.encoder, &settings.codecs) {
        Ok(c) => c,
        Err(e) => return fatal(1, &e),
    };
    for (enc, why) in &chosen.skipped {
        let fallback = chosen.usable.iter().find(|u| u.codec() == enc.codec()).map_or("none", |u| u.element());
        tracing::warn!(encoder = enc.element(), reason = %why, fallback, "encoder not used; falling back");
    }
    for enc in &chosen.usable {
        tracing::info!(encoder = enc.element(), codec = enc.codec().name(), display = %settings.display, width = size.0, height = size.1, session = settings.session.as_deref().unwrap_or("-"), "encoder chosen");
    }
    let metrics = Arc::new(Metrics::new());
    let audio = match settings.pulse_server.as_deref().filter(|s| !s.is_empty()) {
        None => Err("PULSE_SERVER is not set".to_owned()),
        Some(server) => audio::probe(server),
    };
    match &audio {
        Ok(()) => tracing::info!(
            server = settings.pulse_server.as_deref().unwrap_or_default(),
            "desktop sound streams as Opus"
        ),
        Err(why) => tracing::warn!(reason = %why, "no desktop sound; streaming video alone"),
    }
    let state = if audio.is_ok() { "streaming" } else { "off" };
    metrics.audio.get_or_create(&vdi_agent::metrics::label("state", state)).set(1);
    let features = Features {
        resize: settings.enable_resize,
        max_size: settings.max_resolution,
        clipboard: settings.enable_clipboard,
        clip_max: settings.clipboard_max_bytes,
        audio: audio.is_ok(),
    };
    let desktop = Desktop::start(&settings.display, features, metrics.clone());
    for enc in &chosen.usable {
        metrics.encoder.get_or_create(&vdi_agent::metrics::label("encoder", enc.element())).set(1);
    }
    metrics.bitrate_kbps.set(i64::from(settings.video_bitrate));
    let addr = SocketAddr::new(settings.addr, settings.port);
    let agent = Arc::new(Agent::new(settings, chosen.usable, metrics, desktop));

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fatal(1, &format_args!("cannot start the runtime: {e}")),
    };
    let served = runtime.block_on(serve(agent, addr));
    if display.auto_repeat_was_on()
        && let Err(e) = display.set_auto_repeat(true)
    {
        tracing::warn!(error = %e, "keyboard auto-repeat not restored");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fatal(1, &format_args!("{e:#}")),
    }
}

/// Reports why the agent gives up: on stderr, and in the container's termination message
/// (`log`, when it exists), where vdi-status reads it without the desktop having any API access.
fn fatal(log: &std::path::Path, code: u8, msg: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    // Kubernetes keeps at most 4096 bytes of it.
    let mut text = msg.to_string();
    if text.len() > 4000 {
        let mut end = 4000;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    let written = std::fs::OpenOptions::new().write(true).truncate(true).open(log).and_then(|mut f| {
        use std::io::Write;
        f.write_all(text.as_bytes())
    });
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("warning: cannot write the termination message to {}: {e}", log.display());
    }
    ExitCode::from(code)
}

async fn serve(agent: Arc<Agent>, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let ml = tokio::net::TcpListener::bind(agent.settings.metrics_listen).await?;
    tracing::info!(addr = %ml.local_addr()?, "serving metrics");
    let metrics = http::metrics_app(agent.clone());
    let (metrics_stop, stop) = (vdi_process::shutdown_signal(), vdi_process::shutdown_signal());
    tokio::spawn(async move { axum::serve(ml, metrics).with_graceful_shutdown(metrics_stop).await });
    tracing::info!(addr = %listener.local_addr()?, "listening (HTTP)");
    let app = http::app(agent.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let shutdown_agent = agent.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop.await;
            tracing::info!("shutting down: closing the viewer's peer connection");
            shutdown_agent.stop_all("the desktop is shutting down");
        })
        .await?;
    Ok(())
}

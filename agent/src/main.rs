//! `vdi-agent`: checks its settings (a password is mandatory), opens the display, chooses an
//! encoder that works, then serves the web client and signalling until SIGTERM.

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use clap::Parser;
use vdi_agent::{
    audio,
    desktop::{Desktop, Features},
    encoder, http, input,
    metrics::Metrics,
    session::Agent,
    settings::Settings,
};

fn main() -> ExitCode {
    let settings = Settings::parse();
    if std::env::var("DISPLAY").ok().as_deref() != Some(settings.display.as_str()) {
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
    if let Err(msg) = settings.password() {
        eprintln!("error: {msg}");
        return ExitCode::from(2);
    }
    if let Err(e) = vdi_agent::init_gstreamer() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    // The display must open (capture and input both need it). This connection stays open for
    // the agent's lifetime: it turned the server's auto-repeat off and puts it back at exit, and
    // it keeps an X server that resets when its last client leaves (Xvfb) from doing so.
    let display = match input::Injector::connect(&settings.display) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let size = display.size();
    let chosen = match encoder::choose(settings.encoder) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for (enc, why) in &chosen.skipped {
        tracing::warn!(encoder = enc.element(), reason = %why, fallback = chosen.encoder.element(), "encoder not used; falling back");
    }
    tracing::info!(encoder = chosen.encoder.element(), display = %settings.display, width = size.0, height = size.1, "encoder chosen");
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
    metrics.audio.get_or_create(&vec![("state".to_owned(), state.to_owned())]).set(1);
    let features = Features {
        resize: settings.enable_resize,
        max_size: settings.max_resolution,
        clipboard: settings.enable_clipboard,
        clip_max: settings.clipboard_max_bytes,
        audio: audio.is_ok(),
    };
    let desktop = Desktop::start(&settings.display, features, metrics.clone());
    metrics.encoder.get_or_create(&vec![("encoder".to_owned(), chosen.encoder.element().to_owned())]).set(1);
    metrics.bitrate_kbps.set(i64::from(settings.video_bitrate));
    let addr = SocketAddr::new(settings.addr, settings.port);
    let agent = Arc::new(Agent::new(settings, chosen.encoder, metrics, desktop));

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let served = runtime.block_on(serve(agent, addr));
    if display.auto_repeat_was_on()
        && let Err(e) = display.set_auto_repeat(true)
    {
        tracing::warn!(error = %e, "keyboard auto-repeat not restored");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(agent: Arc<Agent>, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening (HTTP)");
    let app = http::app(agent.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let shutdown_agent = agent.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: closing the viewer's peer connection");
            shutdown_agent.stop_all("the desktop is shutting down");
        })
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

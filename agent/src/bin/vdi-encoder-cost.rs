//! `vdi-encoder-cost`: what each video encoder costs on this machine, on what the display shows
//! now. It runs the agent's own capture, conversion and encoder settings with no viewer (see
//! `vdi_agent::media::cost`), first the capture and conversion alone, then each encoder, and
//! prints frames encoded a second, kB a frame and the CPU it took. Run it in a session's
//! container while the desktop shows typical work to size the session's CPU request, or through
//! `scripts/bench-encoders` on the test painter's scenes.
//!
//! Exit status: 0 when every chain was measured, 1 when one failed (the others still are), 2 for
//! bad arguments.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use vdi_agent::{
    media::{
        cost::{self, Cost},
        encoder::{self, Encoder},
    },
    settings,
};
use vdi_crds::agent::{self as contract, env};

/// Measures the agent's video encoders on a live X display.
#[derive(Debug, Parser)]
#[command(name = "vdi-encoder-cost", version, max_term_width = 100)]
struct Args {
    /// X display to capture.
    #[arg(long, env = env::DISPLAY, default_value = contract::DISPLAY)]
    display: String,
    /// Encoders to measure, comma-separated GStreamer element names (nvh264enc, vah264enc,
    /// x264enc, vp8enc, vp9enc); default: each one that works here.
    #[arg(long, value_delimiter = ',', value_parser = parse_encoder)]
    encoders: Vec<Encoder>,
    /// Frames a second asked of the capture (in a session's container: the session's rate).
    #[arg(long, env = env::FRAMERATE, default_value_t = settings::FRAMERATE, value_parser = clap::value_parser!(u32).range(1..=240))]
    fps: u32,
    /// The encoders' target in kbit/s: the agent's highest, where a stream on a clean path ends
    /// (in a session's container: the session's).
    #[arg(long, env = env::MAX_VIDEO_BITRATE, default_value_t = settings::MAX_VIDEO_BITRATE, value_parser = clap::value_parser!(u32).range(100..=100_000))]
    bitrate: u32,
    /// Seconds measured per chain.
    #[arg(long, default_value_t = 10.0, value_parser = positive_seconds)]
    seconds: f64,
    /// Seconds each chain runs before the measured span (its first keyframe goes there).
    #[arg(long, default_value_t = 2.0, value_parser = positive_seconds)]
    warmup: f64,
    /// One JSON object per chain instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

fn parse_encoder(name: &str) -> Result<Encoder, String> {
    Encoder::from_element(name).ok_or_else(|| {
        let known: Vec<_> = Encoder::ALL.iter().map(|e| e.element()).collect();
        format!("unknown encoder {name:?}; one of {}", known.join(", "))
    })
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds between 0 and 3600")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = vdi_agent::init_gstreamer() {
        eprintln!("vdi-encoder-cost: {e}");
        return ExitCode::FAILURE;
    }
    let mut failed = false;
    let encoders = if args.encoders.is_empty() {
        // Every encoder that opens here; the ones that do not are named, not measured.
        Encoder::ALL
            .into_iter()
            .filter(|&enc| match encoder::probe(enc) {
                Ok(()) => true,
                Err(why) => {
                    eprintln!("vdi-encoder-cost: {} is not measured: {why}", enc.element());
                    false
                }
            })
            .collect()
    } else {
        args.encoders.clone()
    };
    let run = cost::Run {
        display: args.display.clone(),
        fps: args.fps,
        bitrate_kbps: args.bitrate,
        warmup: Duration::from_secs_f64(args.warmup),
        span: Duration::from_secs_f64(args.seconds),
    };
    if !args.json {
        println!(
            "| chain | size | fps captured | fps encoded | kB/frame | cores | CPU ms/frame | cores for {} fps |",
            args.fps
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    }
    for chain in std::iter::once(None).chain(encoders.into_iter().map(Some)) {
        match cost::measure(chain, &run) {
            Ok(c) if args.json => println!("{}", json(&c, &run)),
            Ok(c) => println!("{}", row(&c, args.fps)),
            Err(e) => {
                eprintln!("vdi-encoder-cost: {e}");
                failed = true;
                if matches!(e, cost::CostError::NoFrames { .. }) || chain.is_none() {
                    // No picture for the first chain means none for the rest.
                    break;
                }
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn row(c: &Cost, fps: u32) -> String {
    let opt = |v: Option<f64>, digits: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"));
    // The conversion's output is raw frames: their size says nothing.
    let kb = if c.encoder.is_some() { opt(c.kb_per_frame(), 1) } else { "-".to_owned() };
    format!(
        "| {} | {}x{} | {:.1} | {:.1} | {kb} | {:.2} | {} | {} |",
        c.name(),
        c.width,
        c.height,
        c.fps_captured(),
        c.fps(),
        c.cores(),
        opt(c.cpu_ms_per_frame(), 1),
        opt(c.cores_at(fps), 2),
    )
}

fn json(c: &Cost, run: &cost::Run) -> serde_json::Value {
    serde_json::json!({
        "chain": c.name(),
        "codec": c.encoder.map(|e| e.codec().name()),
        "width": c.width,
        "height": c.height,
        "fps_asked": run.fps,
        "bitrate_kbps": run.bitrate_kbps,
        "seconds": c.seconds,
        "captured": c.captured,
        "encoded": c.encoded,
        "bytes": c.encoder.map(|_| c.bytes),
        "cpu_seconds": c.cpu_seconds,
        "fps_captured": c.fps_captured(),
        "fps": c.fps(),
        "cores": c.cores(),
        "cpu_ms_per_frame": c.cpu_ms_per_frame(),
        "kb_per_frame": c.encoder.and(c.kb_per_frame()),
        "cores_at_fps_asked": c.cores_at(run.fps),
    })
}

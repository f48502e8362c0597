//! What one review costs in-process, without TLS, HTTP or a load generator: each bench body
//! (`webhook/benches/*.json`) answered through `review::handle` many times on one thread, with the
//! example templates. `scripts/bench-webhook` prints it beside the load runs.
//! Usage: cargo run --profile dist -p vdi-webhook --example review-cost [ROUNDS]

use std::{path::PathBuf, sync::Arc, time::Instant};

use vdi_webhook::{AppState, Metrics, Templates, review};

// As the server: admission allocates many small, short-lived objects.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let rounds: u32 = std::env::args().nth(1).map(|r| r.parse()).transpose()?.unwrap_or(20_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let state = AppState {
        templates: Templates::from_files(&[root.join("examples/templates")])?,
        metrics: Arc::new(Metrics::new()),
        gpu_resource: "nvidia.com/gpu".into(),
        turn_secret: None,
        gitops_accounts: None,
    };
    for (name, file) in [("complete", "pod-review-complete.json"), ("needs-injections", "pod-review.json")] {
        let body = std::fs::read(root.join("webhook/benches").join(file))?;
        // Warm the allocator and the caches first.
        for _ in 0..rounds / 10 {
            std::hint::black_box(review::handle(&state, review::Mode::Mutate, &body));
        }
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(review::handle(&state, review::Mode::Mutate, &body));
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!("{name:17} {us:6.1} us per review ({rounds} rounds, one thread, {} B request)", body.len());
    }
    Ok(())
}

//! Replays every input kept for the fuzz targets (`fuzz/corpus/<target>/`): the seeds (examples,
//! captured reviews, hostile inputs) and whatever a fuzzing run found worth keeping.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A panic names the input that caused it.
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            panic!("{target} fails on {}", path.display());
        }
        n += 1;
    }
    assert!(n >= 5, "{target}: only {n} inputs in {}", dir.display());
}

#[test]
fn webhook_review_corpus() {
    replay("webhook_review", vdi_fuzz::webhook_review);
}

#[test]
fn render_input_corpus() {
    replay("render_input", vdi_fuzz::render_input);
}

#[test]
fn agent_messages_corpus() {
    replay("agent_messages", vdi_fuzz::agent_messages);
}

//! What a stranger can send to vdi, fed to the code that reads it. Each function is one fuzz
//! target's body: it must never panic, whatever the bytes, and it checks what must hold for any
//! input (an answer for every review, a diagnostic naming the file, a screen size in bounds).
//!
//! `scripts/fuzz` runs them under libFuzzer (`cargo fuzz`, the `fuzz_targets/` entries);
//! `tests/corpus.rs` replays every input kept in `corpus/<target>/` as part of the test suite,
//! so an input that once crashed a parser stays a test for ever.

use std::{path::Path, sync::OnceLock};

use vdi_agent::{
    desktop::{
        input::{denied, keysym_of},
        resize,
    },
    link::{
        protocol::{Assembled, Assembler, FromViewer},
        signalling,
    },
    media::encoder::{self, Codec, Encoder},
};
use vdi_webhook::{
    AppState, Metrics, Templates,
    review::{self, Mode},
};

/// The webhook as deployed with the example templates.
fn webhook() -> &'static AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE.get_or_init(|| {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/templates");
        AppState {
            templates: Templates::from_files(&[examples]).unwrap_or_else(|_| Templates::fixed([])),
            metrics: std::sync::Arc::new(Metrics::new()),
            gpu_resource: vdi_crds::pod::GPU_RESOURCE.into(),
            turn_secret: None,
            gitops_accounts: Some(std::sync::Arc::new(vec![
                "system:serviceaccount:argocd:argocd-application-controller".into(),
            ])),
        }
    })
}

/// An HTTP body sent to `/mutate` and `/validate`: a request that parses gets a well-formed
/// AdmissionReview answer with its uid, on both endpoints; anything else a 400.
pub fn webhook_review(data: &[u8]) {
    let state = webhook();
    for mode in [Mode::Mutate, Mode::Validate] {
        let status = review::handle(state, mode, data).status();
        match review::parse(data, review::depth(mode)) {
            Err(_) => assert_eq!(status, 400, "an unparsable review is a 400"),
            Ok(mut req) => {
                assert_eq!(status, 200, "a parsed review gets an answer");
                let decision = review::decide(state, mode, &mut req);
                let uid = req.uid.as_deref().unwrap_or("").to_owned();
                let answer: serde_json::Value =
                    serde_json::from_slice(&review::review_json(&uid, &decision)).expect("the answer is JSON");
                assert_eq!(answer["response"]["uid"], uid.as_str());
                assert_eq!(answer["response"]["allowed"], decision.allowed());
            }
        }
    }
}

/// A file given to `vdi-render`: documents or diagnostics that name the file, never a crash.
pub fn render_input(data: &[u8]) {
    static SCHEMAS: OnceLock<vdi_documents::Schemas> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(vdi_documents::Schemas::new);
    // `vdi-render` reads files as UTF-8 and says so otherwise: that path is not the parser's.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("fuzz/session.yaml");
    let mut input = vdi_documents::read::Input::default();
    vdi_documents::read::read_text(file, text, schemas, &mut input);
    for d in &input.diagnostics {
        assert_eq!(d.file, file, "{d:?}");
        assert!(!d.message.is_empty(), "{d:?}");
    }
}

/// A data channel message and a signalling message from a viewer's browser (or anything that
/// speaks WebRTC to the agent): parsed or refused, and what a parsed one asks for stays in
/// bounds.
pub fn agent_messages(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(signalling::FromBrowser::Hello { codecs, .. }) = signalling::parse(&text) {
        // Whatever a browser claims to decode, a viewer gets one of those codecs or none.
        let decodable: Vec<Codec> = codecs.iter().filter_map(|c| Codec::from_name(c)).collect();
        if let Some(e) = encoder::for_viewer(&[Encoder::X264, Encoder::Vp8, Encoder::Vp9], &decodable) {
            assert!(decodable.contains(&e.codec()), "{codecs:?} -> {e:?}");
        }
    }
    let Ok(msg) = serde_json::from_str::<FromViewer>(&text) else { return };
    match msg {
        FromViewer::Size { w, h } => {
            let (cw, ch) = resize::clamp(w, h, (2560, 1600));
            assert!((resize::MIN.0..=2560).contains(&u32::from(cw)) && cw % 2 == 0, "{w}x{h} -> {cw}x{ch}");
            assert!((resize::MIN.1..=1600).contains(&u32::from(ch)) && ch % 2 == 0, "{w}x{h} -> {cw}x{ch}");
        }
        FromViewer::Text { s } => {
            for c in s.chars() {
                assert!(!denied(keysym_of(c)), "typed text never becomes a server action: {c:?}");
            }
        }
        FromViewer::Clipboard { s, more } => {
            let mut assembler = Assembler::default();
            let _ = assembler.push(&s, true, 1024);
            match assembler.push(&s, more, 1024) {
                Assembled::Done(all) => assert!(all.len() <= 1024),
                Assembled::TooLarge(n) => assert!(n > 1024),
                Assembled::Pending => assert!(more),
            }
        }
        FromViewer::Key { k, .. } => {
            let _ = denied(k);
        }
        _ => {}
    }
}

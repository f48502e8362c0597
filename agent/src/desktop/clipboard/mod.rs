//! Clipboard text both ways between the desktop's CLIPBOARD selection (UTF-8) and the browser,
//! each direction allowed or not by `SELKIES_ENABLE_CLIPBOARD` (`true`, `false`, `in`, `out`),
//! bounded in size: larger text is refused with a message, never cut short. One clipboard per
//! agent, shared by its viewers; a viewer receives what is copied while it is connected.

use std::sync::{Arc, Mutex};

use clap::ValueEnum;

mod reader;

/// Which ways clipboard text may travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Direction {
    /// Both ways.
    #[value(name = "true", alias = "both")]
    Both,
    /// Neither way.
    #[value(name = "false", alias = "none")]
    Off,
    /// Only from the browser into the desktop.
    In,
    /// Only from the desktop out to the browser.
    Out,
}

impl Direction {
    /// Browser → desktop allowed.
    pub fn inbound(self) -> bool {
        matches!(self, Self::Both | Self::In)
    }

    /// Desktop → browser allowed.
    pub fn outbound(self) -> bool {
        matches!(self, Self::Both | Self::Out)
    }

    /// The name the web client gets.
    pub fn name(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Off => "none",
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

/// Why the clipboard is unavailable.
#[derive(Debug, thiserror::Error)]
#[error("clipboard: {0}")]
pub struct ClipboardError(String);

/// What the desktop copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copied {
    /// Text within the size bound.
    Text(String),
    /// Text over the bound; only its size is kept.
    TooLarge(usize),
}

/// The desktop's CLIPBOARD.
pub struct Clipboard {
    x: x11_clipboard::Clipboard,
    /// What the browser last put there, so its own echo is not sent back.
    last_set: Mutex<Option<String>>,
}

impl Clipboard {
    /// Connects to the display in `DISPLAY`.
    pub fn connect() -> Result<Arc<Self>, ClipboardError> {
        let x = x11_clipboard::Clipboard::new().map_err(|e| ClipboardError(e.to_string()))?;
        Ok(Arc::new(Self { x, last_set: Mutex::new(None) }))
    }

    /// Makes `text` the desktop's CLIPBOARD (UTF-8).
    pub fn set(&self, text: String) -> Result<(), ClipboardError> {
        let atoms = &self.x.setter.atoms;
        self.x
            .store(atoms.clipboard, atoms.utf8_string, text.clone().into_bytes())
            .map_err(|e| ClipboardError(e.to_string()))?;
        if let Ok(mut last) = self.last_set.lock() {
            *last = Some(text);
        }
        Ok(())
    }

    /// Calls `copied` each time something in the desktop copies text, on a thread of its own for
    /// the agent's lifetime.
    pub fn follow(self: &Arc<Self>, limit: usize, copied: impl Fn(Copied) + Send + 'static) {
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("clipboard".into()).spawn(move || {
            let deliver = |c: Copied| match c {
                Copied::Text(text) if me.echo(&text) => {}
                c => copied(c),
            };
            loop {
                if let Err(e) = reader::follow(&me.x.getter, limit, &deliver) {
                    tracing::warn!(error = %e, "reading the desktop's clipboard failed");
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot follow the desktop's clipboard");
        }
    }

    /// Whether `text` is the browser's own paste coming back: our own store comes back once as an
    /// owner change; a later copy of the same text in the desktop is news again.
    fn echo(&self, text: &str) -> bool {
        self.last_set.lock().ok().is_some_and(|mut last| {
            let hit = last.as_deref() == Some(text);
            if hit {
                *last = None;
            }
            hit
        })
    }
}

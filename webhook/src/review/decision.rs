//! What the webhook decided about one request: an [`Outcome`], and warnings for whoever applied
//! the object when it is allowed but odd.

/// Allowed as is, allowed with a patch, or refused (and why).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Allowed unchanged.
    Allowed,
    /// Allowed with this JSON Patch (never empty).
    Patched(json_patch::Patch),
    /// Refused: the message is for the person who applied the object.
    Denied(String),
    /// The object does not parse: refused, and counted as an error.
    Unreadable(String),
}

/// A decision about one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What happens to the object.
    pub outcome: Outcome,
    /// Said to the client (`kubectl` prints them) whatever the outcome.
    pub warnings: Vec<String>,
}

impl Decision {
    fn of(outcome: Outcome) -> Self {
        Self { outcome, warnings: Vec::new() }
    }

    /// Allowed unchanged.
    pub fn allow() -> Self {
        Self::of(Outcome::Allowed)
    }

    /// Denied with a message for the person who applied the object.
    pub fn deny(message: impl Into<String>) -> Self {
        Self::of(Outcome::Denied(message.into()))
    }

    /// The object did not parse: denied, counted as an error.
    pub fn unreadable(message: impl Into<String>) -> Self {
        Self::of(Outcome::Unreadable(message.into()))
    }

    /// Allowed with a JSON Patch (allowed unchanged when the patch is empty).
    pub fn patch(patch: json_patch::Patch) -> Self {
        if patch.0.is_empty() { Self::allow() } else { Self::of(Outcome::Patched(patch)) }
    }

    /// The same decision with one more warning.
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Whether the object is admitted.
    pub fn allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allowed | Outcome::Patched(_))
    }

    /// Why it was refused.
    pub fn message(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Denied(m) | Outcome::Unreadable(m) => Some(m),
            _ => None,
        }
    }

    /// The patch, when there is one.
    pub fn patch_ops(&self) -> Option<&json_patch::Patch> {
        match &self.outcome {
            Outcome::Patched(p) => Some(p),
            _ => None,
        }
    }

    /// `allowed`, `patched`, `denied` or `error`: the metrics' `result` label.
    pub fn result(&self) -> &'static str {
        match self.outcome {
            Outcome::Allowed => "allowed",
            Outcome::Patched(_) => "patched",
            Outcome::Denied(_) => "denied",
            Outcome::Unreadable(_) => "error",
        }
    }
}

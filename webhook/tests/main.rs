//! The integration suites of the webhook, one module each, in one test binary: one link instead of
//! three, and one executable on disk.

mod admission;
mod cluster_templates;
mod status_derive;

//! The integration suites of the agent, one module each, in one test binary: one link instead of
//! three, and one executable on disk.

mod client_js;
mod keyframe_on_pli;
mod pipeline;

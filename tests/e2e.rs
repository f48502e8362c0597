//! The end-to-end suites, one module each, in one test binary: one link instead of eleven, and one
//! executable on disk. Each suite runs the built binaries against real tools; nextest still runs
//! every test in a process of its own (`.config/nextest.toml` keeps the streaming suites one at a
//! time). Run one suite with `cargo nextest run -p vdi-e2e -E 'test(/^netns_turn::/)'`.

mod agent_e2e;
mod crd_schema;
mod deploy_examples;
mod desktop_e2e;
mod gitops;
mod netns_turn;
mod rehearsal;
mod render_cli;
mod status_writer;
mod turn_coturn;
mod webhook_tls;

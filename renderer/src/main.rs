//! `vdi-render`: the command line. Parses arguments, calls the library, turns problems into
//! messages on stderr and an exit status (0 ok, 1 invalid input or stale output, 2 usage).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use vdi_render::{Settings, layout, output};

/// Renders VDISession and VDITemplate documents (vdi.kasm.io/v1alpha1) into Kubernetes manifests
/// for Argo CD or Flux: per session a Pod, Service, PersistentVolumeClaim, the auth Secret
/// (without its value; the vdi-webhook fills it at admission) and, per the settings, a
/// ServiceAccount, NetworkPolicy and Ingress. Output is deterministic.
///
/// Exit status: 0 success, 1 invalid input (every problem is listed with file:line:col) or, with
/// --check, an out-of-date folder; 2 usage error.
#[derive(Parser)]
#[command(name = "vdi-render", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render sessions and templates.
    ///
    /// Without --out, all manifests go to stdout as one multi-document YAML stream and nothing
    /// else is printed there (the Argo CD Config Management Plugin contract).
    ///
    /// With --out DIR, DIR is replaced atomically by: DIR/kustomization.yaml listing one folder
    /// per namespace; DIR/<namespace>/ with one <session>.yaml per session and a
    /// kustomization.yaml. A namespace with more sessions than the shard size is split into
    /// DIR/<namespace>/shard-NNN/ folders, each a kustomization one Argo CD Application or Flux
    /// Kustomization can point at. Sessions keep their shard across runs (the previous DIR is
    /// read for that), so a git diff shows only what changed. Files of removed sessions
    /// disappear. A failed run leaves DIR untouched. DIR must be new, empty, or written by
    /// vdi-render.
    ///
    /// Documents of any other kind are errors, not passed through: keep other manifests out of
    /// the PATHs.
    Render {
        /// Files or folders (searched recursively for *.yaml and *.yml; multi-document files
        /// are fine). Order does not matter.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Write a kustomize folder tree here instead of printing to stdout.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Cluster settings (domain, URL pattern, shard size, ingress, TURN, ...); see
        /// examples/settings.yaml for every setting and its default.
        #[arg(long, value_name = "FILE", env = "VDI_RENDER_SETTINGS")]
        settings: Option<PathBuf>,
        /// Do not write: compare what would be written with --out DIR, print a diff and exit 1
        /// when they differ.
        #[arg(long, requires = "out")]
        check: bool,
    },
    /// Print the CustomResourceDefinitions of VDISession and VDITemplate.
    Crds,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Crds => {
            print_stdout(&vdi_crds::crd_yaml::stream())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { paths, out, settings, check } => render(&paths, out.as_deref(), settings.as_deref(), check),
    }
}

fn render(paths: &[PathBuf], out: Option<&Path>, settings: Option<&Path>, check: bool) -> anyhow::Result<ExitCode> {
    let settings = match settings {
        Some(path) => match Settings::load(path) {
            Ok(s) => s,
            Err(diags) => return Ok(report(vdi_render::Diagnostics(diags))),
        },
        None => Settings::default(),
    };
    let sessions = match vdi_render::render(paths, &settings) {
        Ok(s) => s,
        Err(diags) => return Ok(report(diags)),
    };
    let Some(dir) = out else {
        write_stream(&sessions)?;
        return Ok(ExitCode::SUCCESS);
    };
    let prior = layout::Prior::read(dir);
    let files = layout::layout(&sessions, settings.shard_size, &prior);
    if check {
        let diff = output::diff(dir, &files).with_context(|| format!("reading {}", dir.display()))?;
        if diff.is_empty() {
            eprintln!("{} is up to date ({} sessions)", dir.display(), sessions.len());
            return Ok(ExitCode::SUCCESS);
        }
        print_stdout(&diff)?;
        eprintln!(
            "{} is out of date; run `vdi-render render ... --out {}` and commit the result",
            dir.display(),
            dir.display()
        );
        return Ok(ExitCode::from(1));
    }
    output::write_atomic(dir, &files).with_context(|| format!("writing {}", dir.display()))?;
    eprintln!("wrote {} sessions ({} files) to {}", sessions.len(), files.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}

fn report(diags: vdi_render::Diagnostics) -> ExitCode {
    eprintln!("{diags}");
    ExitCode::from(1)
}

/// Writes session after session, never the whole stream at once (it is tens of MB at scale).
fn write_stream(sessions: &[vdi_render::RenderedSession]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = sessions.iter().try_for_each(|s| out.write_all(s.yaml.as_bytes())).and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`vdi-render ... | head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

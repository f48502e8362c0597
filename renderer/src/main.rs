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
    /// With --out DIR, DIR is replaced atomically by: DIR/_cluster/ (the CRDs, the templates and
    /// the session namespaces, to be applied first); DIR/<namespace>/shard-NNN/ folders of at most
    /// the shard size, with one <session>.yaml per session (its VDISession and every object it
    /// needs); and kustomization.yaml files listing them. The leaf folders (_cluster and every
    /// shard) are what one Argo CD Application or Flux Kustomization applies each. Sessions keep
    /// their shard across runs (the previous DIR is read for that), so a git diff shows only what
    /// changed. Files of removed sessions disappear. A failed run leaves DIR untouched. DIR must
    /// be new, empty, or written by vdi-render.
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
        /// Also write DIR/_flux/: one Flux Kustomization per leaf folder, from the GitRepository
        /// SOURCE (`name` or `namespace/name`; namespace default flux-system). Apply DIR/_flux
        /// with one Kustomization of your own (examples/flux).
        #[arg(long, value_name = "SOURCE", requires = "out")]
        flux: Option<String>,
        /// DIR's path inside the git repository, for --flux (default: DIR relative to the
        /// repository holding it, else DIR as given).
        #[arg(long, value_name = "PATH", requires = "flux")]
        flux_path: Option<String>,
        /// Succeed even when no session is found. Without it, an input with no session is an
        /// error: an empty stream would make Argo CD or Flux prune every desktop.
        #[arg(long)]
        allow_empty: bool,
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
        Command::Render { paths, out, settings, check, flux, flux_path, allow_empty } => {
            let flux = match flux {
                None => None,
                Some(source) => {
                    let dir = out.as_deref().unwrap_or(Path::new("."));
                    let path = flux_path.unwrap_or_else(|| repository_path(dir));
                    match vdi_render::flux::FluxTarget::new(&source, &path) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            eprintln!("error: {e}");
                            return Ok(ExitCode::from(2));
                        }
                    }
                }
            };
            let opts = Options { out: out.as_deref(), check, flux: flux.as_ref(), allow_empty };
            render(&paths, settings.as_deref(), &opts)
        }
    }
}

struct Options<'a> {
    out: Option<&'a Path>,
    check: bool,
    flux: Option<&'a vdi_render::flux::FluxTarget>,
    allow_empty: bool,
}

/// `dir` relative to the root of the git repository that holds it (found by its `.git`), else
/// `dir` as given.
fn repository_path(dir: &Path) -> String {
    let given = dir.to_string_lossy().trim_end_matches('/').to_owned();
    let absolute = if dir.is_absolute() {
        dir.to_owned()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(dir),
            Err(_) => return given,
        }
    };
    let start = absolute.parent().and_then(|p| p.canonicalize().ok());
    let Some(name) = absolute.file_name() else { return given };
    let Some(start) = start else { return given };
    let mut root = Some(start.as_path());
    while let Some(r) = root {
        if r.join(".git").exists() {
            let rel = start.join(name);
            return rel.strip_prefix(r).map_or(given, |p| p.to_string_lossy().into_owned());
        }
        root = r.parent();
    }
    given
}

fn render(paths: &[PathBuf], settings: Option<&Path>, opts: &Options<'_>) -> anyhow::Result<ExitCode> {
    let settings = match settings {
        Some(path) => match Settings::load(path) {
            Ok(s) => s,
            Err(diags) => return Ok(report(vdi_render::Diagnostics(diags))),
        },
        None => Settings::default(),
    };
    let rendered = match vdi_render::render(paths, &settings) {
        Ok(s) => s,
        Err(diags) => return Ok(report(diags)),
    };
    if rendered.sessions.is_empty() && !opts.allow_empty {
        let shown: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "error: no VDISession found in {}; refusing to render an empty set, which Argo CD or Flux would apply by pruning every desktop (pass --allow-empty if that is meant)",
            shown.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    let sessions = &rendered.sessions;
    let Some(dir) = opts.out else {
        write_stream(&rendered)?;
        return Ok(ExitCode::SUCCESS);
    };
    let prior = layout::Prior::read(dir);
    let files = layout::layout(&rendered, settings.shard_size, &prior, opts.flux);
    if opts.check {
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

/// Writes document after document, never the whole stream at once (it is tens of MB at scale).
fn write_stream(rendered: &vdi_render::Rendered) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = rendered.stream().try_for_each(|doc| out.write_all(doc.as_bytes())).and_then(|()| out.flush());
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

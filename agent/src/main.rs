//! vdi-agent: filled in by its own issue.

fn main() {
    eprintln!("vdi-agent is not implemented yet");
    std::process::exit(2);
}

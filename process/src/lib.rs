//! vdi-process: what every long-running vdi binary (the agent, the webhook, `vdi-status`) does
//! around its work. Today: stopping cleanly when Kubernetes says so.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Resolves on SIGTERM or SIGINT. The handlers are installed by this call, not at the first poll:
/// a SIGTERM that comes just after a server says it listens (a Pod stopped as it starts) is then
/// a clean shutdown instead of the default action, death by the signal. Call it before saying so.
/// Must be called inside a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async fn first(signal: Option<Signal>) {
        match signal {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let (term, int) = (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok());
    async move {
        tokio::select! {
            () = first(term) => {},
            () = first(int) => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// The signal comes before the future is first polled, and the process lives to see it
    /// resolve (with handlers installed at the first poll, it died here of the signal).
    #[tokio::test]
    async fn a_sigterm_before_the_first_poll_is_a_clean_stop() {
        let stop = super::shutdown_signal();
        let kill = std::process::Command::new("kill").args(["-TERM", &std::process::id().to_string()]).status();
        assert!(kill.is_ok_and(|s| s.success()), "kill -TERM");
        assert!(tokio::time::timeout(Duration::from_secs(10), stop).await.is_ok(), "SIGTERM seen");
    }
}

//! The stop request a person or a service manager sends: Ctrl-C (SIGINT) or SIGTERM. `send`,
//! `issues resume`, `serve`, `run` and `worker` all stop gracefully on either.

/// Returns once SIGINT or SIGTERM arrives. Where SIGTERM cannot be watched, Ctrl-C still stops.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

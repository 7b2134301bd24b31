//! Local fake servers (GitLab, GitHub, LLM providers) for outbound HTTP tests.

use axum::Router;

/// Serves `router` on a free loopback port, in the background, and returns the port.
pub async fn serve(router: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    port
}

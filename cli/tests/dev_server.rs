//! The real `buildlore` binary: bootstrap the emulator, serve with `buildlore dev`, and use it
//! over HTTP the way a CI job would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed expectation is the test failing"
)]

use buildlore_tests::emulator;
use buildlore_tests::stack::unique_name;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INGEST: &str = "dev-test-ingest-key-0000001";
const READ: &str = "dev-test-read-key-00000000001";

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn buildlore(table: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_buildlore"));
    command
        .env("AWS_ENDPOINT_URL", emulator::endpoint())
        .env("AWS_ACCESS_KEY_ID", "emulator")
        .env("AWS_SECRET_ACCESS_KEY", "emulator")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TABLE_NAME", table)
        .env("INGEST_API_KEY", INGEST)
        .env("READ_API_KEY", READ)
        .env("RUST_LOG", "warn");
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

#[tokio::test]
async fn bootstrap_then_dev_serves_ingest_and_query() {
    let table = unique_name("buildlore-dev");
    let queue = unique_name("buildlore-dev-analysis");
    let output = buildlore(&table)
        .args(["bootstrap", "--queue", &queue])
        .output()
        .expect("run buildlore bootstrap");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        printed.contains(&format!("TABLE_NAME={table}")),
        "{printed}"
    );
    let queue_url = printed
        .lines()
        .find_map(|line| line.strip_prefix("ANALYSIS_QUEUE_URL="))
        .expect("bootstrap prints the queue URL")
        .to_string();
    assert!(queue_url.ends_with(&queue), "{queue_url}");

    let port = free_port();
    let _server = KillOnDrop(
        buildlore(&table)
            .env("ANALYSIS_QUEUE_URL", &queue_url)
            .args(["dev", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()
            .expect("start buildlore dev"),
    );
    let base = format!("http://127.0.0.1:{port}");
    buildlore_providers::install_crypto();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if http.get(format!("{base}/api/health")).send().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "buildlore dev did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let response = http
        .post(format!("{base}/api/v1/builds"))
        .bearer_auth(INGEST)
        .json(&json!({"build_id": "d1", "repo": "team/service", "branch": "main", "status": "failed", "duration_ms": 1200}))
        .send()
        .await
        .expect("post a build");
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/api/v1/repos/team%2Fservice/builds/d1")
    );
    let listed: Value = http
        .get(format!(
            "{base}/api/v1/builds?repo=team/service&status=failure"
        ))
        .bearer_auth(READ)
        .send()
        .await
        .expect("list builds")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["builds"][0]["duration_ms"], 1200);
    let fetched: Value = http
        .get(format!("{base}/api/v1/repos/team%2Fservice/builds/d1"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("get build")
        .json()
        .await
        .expect("JSON");
    assert_eq!(fetched["status"], "FAILURE");
}

#[tokio::test]
async fn half_open_connections_are_closed_and_sigterm_stops_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let table = unique_name("buildlore-dev-timeouts");
    let port = free_port();
    let mut server = KillOnDrop(
        buildlore(&table)
            .args([
                "dev",
                "--no-worker",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--header-timeout-seconds",
                "1",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start buildlore dev"),
    );
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(&address).await {
            break stream;
        }
        assert!(Instant::now() < deadline, "buildlore dev did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Half a request's headers, then nothing: the server hangs up after the header timeout.
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the half-open connection within 5 s");
    assert!(read.is_ok() || answer.is_empty(), "{read:?}");
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "no request was served"
    );

    // SIGTERM ends the server (a backgrounded `infra/local/run` gets no SIGINT from Ctrl-C).
    let pid = server.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "buildlore dev ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! The moto server every storage test talks to, over the real AWS wire protocol.
//!
//! `BUILDLORE_TEST_AWS_ENDPOINT` names one that is already running (`infra/test` starts one).
//! Otherwise `infra/local/emulator.py` (moto, requests serialised as DynamoDB serialises item
//! writes) is started on a free loopback port with the project's venv (`.venv`, made by
//! `infra/test` or `infra/local/run`), and stopped when the test process exits.
//! A missing emulator fails the test loudly.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ENDPOINT_VARIABLE: &str = "BUILDLORE_TEST_AWS_ENDPOINT";

struct Emulator {
    endpoint: String,
    /// Holds the watchdog's stdin open; when this process exits, the pipe closes and the
    /// watchdog stops moto.
    _watchdog: Option<Child>,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

/// The endpoint URL of the emulator, starting one if needed.
pub fn endpoint() -> &'static str {
    &EMULATOR.get_or_init(start_or_find).endpoint
}

fn start_or_find() -> Emulator {
    if let Ok(endpoint) = std::env::var(ENDPOINT_VARIABLE) {
        wait_until_ready(&endpoint, Duration::from_secs(20)).unwrap_or_else(|reason| {
            panic!("{ENDPOINT_VARIABLE}={endpoint} is not answering: {reason}")
        });
        return Emulator {
            endpoint,
            _watchdog: None,
        };
    }
    let python = emulator_python().unwrap_or_else(|| {
        panic!(
            "no Python with moto found: run the tests with `infra/test` (it installs moto into \
             .venv), or set {ENDPOINT_VARIABLE} to a running emulator"
        )
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/local/emulator.py");
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let watchdog = Command::new(&python)
        .args([
            "-c",
            "import subprocess, sys\n\
             p = subprocess.Popen([sys.executable, sys.argv[1], '--port', sys.argv[2]],\n\
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
             sys.stdin.read()\n\
             p.terminate()\n",
        ])
        .arg(&script)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", python.display()));
    wait_until_ready(&endpoint, Duration::from_secs(30))
        .unwrap_or_else(|reason| panic!("the emulator on {endpoint} did not start: {reason}"));
    Emulator {
        endpoint,
        _watchdog: Some(watchdog),
    }
}

/// The project venv's Python (it has moto), else a `python3` on PATH that can import moto.
fn emulator_python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.is_file() {
        return Some(venv);
    }
    let has_moto = Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    has_moto.then(|| PathBuf::from("python3"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// Waits until the emulator answers HTTP.
fn wait_until_ready(endpoint: &str, timeout: Duration) -> Result<(), String> {
    let address: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("not a http://IP:PORT endpoint: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        match probe(address) {
            Ok(()) => return Ok(()),
            Err(e) => last_error = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last_error)
}

fn probe(address: SocketAddr) -> Result<(), String> {
    use std::io::Write;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err("not an HTTP server".into())
    }
}

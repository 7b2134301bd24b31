//! `buildlore bench webhooks`: the CPU cost of a delivery before storage.

use crate::dev::BoxError;
use buildlore_core::compression::gunzip_capped;
use buildlore_core::webhooks::secret::{WebhookSecrets, signature_header};
use buildlore_core::webhooks::{WebhookEvent, github, gitlab};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SECRET: &str = "benchmark-webhook-secret";

struct Payload {
    label: String,
    provider: &'static str,
    event: String,
    body: Vec<u8>,
    signature: String,
}

/// The fixtures directory: `BUILDLORE_FIXTURES` if set, else the repository's `tests/fixtures`.
pub(crate) fn fixtures() -> PathBuf {
    std::env::var_os("BUILDLORE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures"))
}

/// More than any fixture holds once decompressed.
const MAX_FIXTURE_BYTES: usize = 256 * 1024 * 1024;

/// A fixture file's bytes: `path` itself, or, where only `path.gz` is stored (the large logs
/// are), that file decompressed.
pub(crate) fn read_fixture(path: &Path) -> Result<Vec<u8>, BoxError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut packed = path.as_os_str().to_owned();
            packed.push(".gz");
            let packed = PathBuf::from(packed);
            let compressed = std::fs::read(&packed)
                .map_err(|_| format!("{}: {e} (nor is there a .gz of it)", path.display()))?;
            Ok(gunzip_capped(&compressed, MAX_FIXTURE_BYTES)
                .map_err(|e| format!("{}: {e}", packed.display()))?)
        }
        Err(e) => Err(format!("{}: {e}", path.display()).into()),
    }
}

/// The files in a fixtures folder, sorted, each named without a `.gz` suffix (read them with
/// [`read_fixture`]).
pub(crate) fn fixture_files(dir: &Path) -> Result<Vec<PathBuf>, BoxError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        files.push(match path.to_str().and_then(|p| p.strip_suffix(".gz")) {
            Some(plain) => PathBuf::from(plain),
            None => path,
        });
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn payloads() -> Result<Vec<Payload>, BoxError> {
    let root = fixtures().join("webhooks");
    let mut payloads = Vec::new();
    for (event, file) in [
        ("Pipeline Hook", "pipeline_hook.json"),
        ("Job Hook", "job_hook.cleaned.json"),
    ] {
        let body = read_fixture(&root.join("gitlab").join(file))?;
        payloads.push(Payload {
            label: format!("gitlab/{file}"),
            provider: "gitlab",
            event: event.to_string(),
            signature: String::new(),
            body,
        });
    }
    for event in [
        "workflow_run",
        "workflow_job",
        "check_run",
        "check_suite",
        "status",
    ] {
        for path in fixture_files(&root.join("github").join(event))? {
            let body = read_fixture(&path)?;
            payloads.push(Payload {
                label: format!(
                    "github/{event}/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                provider: "github",
                event: event.to_string(),
                signature: signature_header(SECRET.as_bytes(), &body),
                body,
            });
        }
    }
    Ok(payloads)
}

/// One delivery: authenticate, parse, normalise. Returns how many records it produced.
fn deliver(
    payload: &Payload,
    secrets: &WebhookSecrets,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, BoxError> {
    let event = if payload.provider == "gitlab" {
        secrets.verify_token(Some(SECRET.as_bytes()))?;
        gitlab::parse_bytes(&payload.event, &payload.body, now)?
    } else {
        secrets.verify_signature(&payload.body, Some(payload.signature.as_bytes()))?;
        github::parse_bytes(&payload.event, &payload.body, now)?
    };
    Ok(match event {
        WebhookEvent::Records(records) => {
            records.pipelines.len() + records.jobs.len() + records.builds.len()
        }
        _ => 0,
    })
}

pub fn run(seconds: f64) -> Result<(), BoxError> {
    let payloads = payloads()?;
    let secrets = WebhookSecrets::from_list(SECRET);
    let now = chrono::Utc::now();
    let budget = Duration::from_secs_f64(seconds.max(0.05));
    println!(
        "bench webhooks: authenticate + parse + normalise, one thread, {seconds:.1} s per payload"
    );
    let (mut total_deliveries, mut total_time, mut total_bytes) = (0u64, Duration::ZERO, 0u64);
    for payload in &payloads {
        let records = deliver(payload, &secrets, now)?;
        let started = Instant::now();
        let mut deliveries = 0u64;
        while started.elapsed() < budget {
            for _ in 0..64 {
                std::hint::black_box(deliver(std::hint::black_box(payload), &secrets, now)?);
            }
            deliveries += 64;
        }
        let elapsed = started.elapsed();
        total_deliveries += deliveries;
        total_time += elapsed;
        total_bytes += deliveries * payload.body.len() as u64;
        println!(
            "  {:<66} {:>6} B  {:>2} records  {:>9.0} deliveries/s",
            payload.label,
            payload.body.len(),
            records,
            deliveries as f64 / elapsed.as_secs_f64()
        );
    }
    println!(
        "  overall: {:.0} deliveries/s per core ({:.1} MB/s) over {} payloads",
        total_deliveries as f64 / total_time.as_secs_f64(),
        total_bytes as f64 / total_time.as_secs_f64() / 1e6,
        payloads.len()
    );
    Ok(())
}

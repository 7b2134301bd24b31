//! `buildlore`: run every function locally on one port, create resources, measure.

mod analyze;
mod backfill;
mod bench;
mod bench_init;
mod bench_jobtrace;
mod bench_junit;
mod bench_memory;
mod bench_triage;
mod bench_webhooks;
mod dev;
mod evaluate;
mod fuzz;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "buildlore",
    version,
    about = "CI build knowledge: local server, bootstrap and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every function's routes on one port and run the analysis worker against SQS,
    /// as API Gateway and the SQS event source would on AWS.
    Dev(dev::DevArgs),
    /// Create the table and the analysis queues (idempotent) and print their names.
    Bootstrap(dev::BootstrapArgs),
    /// Triage a job log (excerpt, category, failed tests, fingerprint); no service needed.
    Analyze(analyze::AnalyzeArgs),
    /// Feed every parser of outside input mutated real inputs; fails on any panic.
    Fuzz(fuzz::FuzzArgs),
    /// Ask a deployment to read a project's, group's or repo's recent pipelines and jobs from
    /// GitLab or GitHub, and follow its progress.
    Backfill(backfill::BackfillArgs),
    /// Benchmarks against the local emulator.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    buildlore_api::telemetry::init();
    buildlore_providers::install_crypto();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Bootstrap(args) => dev::bootstrap(args).await,
        Command::Analyze(args) => analyze::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Backfill(args) => backfill::run(args).await,
        Command::Bench(command) => bench::run(command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("buildlore: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

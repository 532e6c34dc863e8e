//! `autoscaler policy check FILE`: load a policy as the host would, and try it once;
//! `autoscaler policy export NAME`: write a bundled policy to a file, to run or start from.
//!
//! Prints the policy's name, hash, contract version, exports and the decision on a sample
//! snapshot (or one given as JSON), and exits 0; or says exactly what is wrong (the missing
//! export, the contract version expected and found, a core module and how to build a
//! component, why `configure` rejected the parameters, how a call failed) and exits 1.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::cli::{CliError, load_config};
use crate::policy::embedded::{BUNDLED, bundled};
use crate::policy::engine::read_policy;
use crate::policy::reload::display_name;
use crate::policy::{CONTRACT_PACKAGE, PolicyDecision, PolicyRuntime, Snapshot, sample_snapshot};
use crate::service::policy_loader;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Load a policy file (or a bundled policy by name) as the host would and show its
    /// decision on a snapshot.
    Check(CheckArgs),
    /// Write a bundled policy (threshold, static, fixed-step, target-tracking) to a file.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundled policy's name.
    pub name: String,
    /// Where to write it [default: NAME.wasm].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy component (.wasm), or a bundled policy's name.
    pub file: PathBuf,
    /// TOML config file, for `[policy.params]` and the limits.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// A snapshot as JSON (fields as in the contract, snake_case); a quiet sample by default.
    #[arg(long)]
    pub snapshot: Option<String>,
}

pub async fn execute(command: PolicyCommand) -> Result<(), CliError> {
    match command {
        PolicyCommand::Check(args) => check(args).await,
        PolicyCommand::Export(args) => export(&args),
    }
}

fn export(args: &ExportArgs) -> Result<(), CliError> {
    let Some(bytes) = bundled(&args.name) else {
        return Err(CliError::Usage(anyhow::anyhow!(
            "no bundled policy is called {:?}; the bundled ones are {}",
            args.name,
            BUNDLED.join(", ")
        )));
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", args.name)));
    std::fs::write(&out, bytes)
        .with_context(|| format!("failed to write \"{}\"", out.display()))?;
    println!("wrote {} ({} bytes)", out.display(), bytes.len());
    Ok(())
}

async fn check(args: CheckArgs) -> Result<(), CliError> {
    let config = load_config(args.config.as_ref()).map_err(|e| CliError::Usage(e.into()))?;
    let snapshot = match &args.snapshot {
        Some(json) => parse_snapshot(json).map_err(CliError::Usage)?,
        None => sample_snapshot(&config),
    };
    let loader = policy_loader(&config)?;
    // Off the async threads, as the host calls policies: a guest's blocking writes to stdout
    // or stderr enter tokio, which must not happen on a runtime thread.
    let checked = tokio::task::spawn_blocking(move || try_policy(&args.file, &loader, &snapshot))
        .await
        .context("the policy check panicked")?;
    Ok(checked?)
}

/// Loads the file as the host would and asks it for one decision; prints what it found.
fn try_policy(
    path: &std::path::Path,
    loader: &crate::policy::PolicyLoader,
    snapshot: &Snapshot,
) -> anyhow::Result<()> {
    let file = path.display();
    let name = path.to_str().filter(|_| !path.exists()).and_then(bundled);
    let bytes = match name {
        Some(bytes) => bytes.to_vec(),
        None => read_policy(path).with_context(|| {
            let hint = if path.exists() {
                String::new()
            } else {
                format!(" (nor is it a bundled policy: {})", BUNDLED.join(", "))
            };
            format!("failed to load policy \"{file}\"{hint}")
        })?,
    };
    let mut runtime = loader
        .runtime(&display_name(path), &bytes)
        .with_context(|| format!("failed to load policy \"{file}\""))?;
    let decision = runtime
        .decide(snapshot)
        .with_context(|| format!("policy \"{file}\" failed to decide"))?;
    print_report(&runtime, bytes.len(), &decision);
    Ok(())
}

fn print_report(runtime: &PolicyRuntime, size: usize, decision: &PolicyDecision) {
    let policy = runtime.policy();
    let contract = policy
        .contract
        .as_deref()
        .unwrap_or("(imports no contract interface)");
    println!(
        "policy:   {} ({size} bytes, sha256 {})",
        policy.name, policy.hash
    );
    println!("contract: {CONTRACT_PACKAGE}@{contract}");
    println!("exports:  {}", policy.exports.join(", "));
    println!("imports:  {}", policy.imports.join(", "));
    println!("decision: target {} — {}", decision.target, decision.reason);
    if let Some(took) = runtime.last_call {
        println!("call:     {took:?}");
    }
}

/// Reads a snapshot from JSON: any field left out keeps the sample's value.
fn parse_snapshot(json: &str) -> anyhow::Result<Snapshot> {
    let value: serde_json::Value =
        serde_json::from_str(json).context("--snapshot is not valid JSON")?;
    let fields = value
        .as_object()
        .context("--snapshot must be a JSON object of snapshot fields")?;
    let mut snapshot = sample_snapshot(&crate::config::Config::default());
    for (key, v) in fields {
        set_field(&mut snapshot, key, v)
            .with_context(|| format!("--snapshot field {key:?} = {v}"))?;
    }
    Ok(snapshot)
}

fn set_field(s: &mut Snapshot, key: &str, v: &serde_json::Value) -> anyhow::Result<()> {
    let u32_of = |v: &serde_json::Value| -> anyhow::Result<u32> {
        let n = v.as_u64().context("expected a whole number")?;
        u32::try_from(n).context("too large")
    };
    let u64_of = |v: &serde_json::Value| v.as_u64().context("expected a whole number");
    let opt_u64 = |v: &serde_json::Value| -> anyhow::Result<Option<u64>> {
        if v.is_null() {
            Ok(None)
        } else {
            u64_of(v).map(Some)
        }
    };
    let f64_of = |v: &serde_json::Value| v.as_f64().context("expected a number");
    match key {
        "queue_depth" => s.queue_depth = u32_of(v)?,
        "oldest_task_age_ms" => s.oldest_task_age_ms = opt_u64(v)?,
        "workers" => s.workers = u32_of(v)?,
        "busy" => s.busy = u32_of(v)?,
        "draining" => s.draining = u32_of(v)?,
        "utilization" => s.utilization = f64_of(v)?,
        "latency_p50_ms" => s.latency_p50_ms = opt_u64(v)?,
        "latency_p95_ms" => s.latency_p95_ms = opt_u64(v)?,
        "attempts" => s.attempts = u32_of(v)?,
        "arrival_rate" => s.arrival_rate = f64_of(v)?,
        "completion_rate" => s.completion_rate = f64_of(v)?,
        "balance_usd" => s.balance_usd = if v.is_null() { None } else { Some(f64_of(v)?) },
        "submissions_paused" => s.submissions_paused = v.as_bool().context("expected a boolean")?,
        "min_workers" => s.min_workers = u32_of(v)?,
        "max_workers" => s.max_workers = u32_of(v)?,
        "since_scale_up_ms" => s.since_scale_up_ms = opt_u64(v)?,
        "since_scale_down_ms" => s.since_scale_down_ms = opt_u64(v)?,
        "transport_error_rate" => s.errors.transport = f64_of(v)?,
        "task_error_rate" => s.errors.task = f64_of(v)?,
        "solver_capacity_error_rate" => s.errors.solver_capacity = f64_of(v)?,
        "account_error_rate" => s.errors.account = f64_of(v)?,
        other => anyhow::bail!("unknown snapshot field {other:?}"),
    }
    Ok(())
}

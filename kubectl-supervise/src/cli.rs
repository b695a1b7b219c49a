//! The command line: clap types, and `run`, which turns them into calls of the library and
//! decides the exit code in one place.

use crate::{check, inject, webhook, yaml};
use clap::{Args, Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;

/// The exit codes, as documented in docs/kubectl-supervise.md.
pub mod exit {
    pub const OK: i32 = 0;
    /// `check` found problems.
    pub const PROBLEMS: i32 = 1;
    /// Bad input: unreadable file, invalid YAML, unknown flag, a name that matches nothing.
    pub const USAGE: i32 = 2;
    /// `webhook` could not serve (the address is taken, a thread could not start).
    pub const FAILED: i32 = 1;
}

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-supervise",
    bin_name = "kubectl supervise",
    version = supervisor::VERSION,
    about = "Wire a pod's containers with supervisor, and check the wiring.",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Add the supervisor wiring to every pod in the input; write the result to stdout.
    Inject(InjectArgs),
    /// Report wiring mistakes, one line each: exit 0 when there are none, 1 when there are.
    Check(CheckArgs),
    /// Serve inject as a mutating admission webhook (HTTPS: POST /mutate, GET /healthz) to
    /// pods annotated supervisor/inject: "true". Stops on SIGTERM after the requests in progress.
    Webhook(WebhookArgs),
}

#[derive(Args, Debug)]
pub struct Input {
    /// A file of Kubernetes YAML or JSON (many documents, `kind: List`, a Buildkite
    /// pipeline.yml); `-` is stdin. Repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        default_value = "-"
    )]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InjectArgs {
    #[command(flatten)]
    pub input: Input,

    /// A main container: the others become sidecars that stop when every main is done.
    /// Repeatable. Default: the pod's supervisor/main annotation, else its only container.
    #[arg(long = "main", value_name = "NAME")]
    pub mains: Vec<String>,

    /// The sidecar announces readiness once TARGET is ready (file:PATH, tcp://HOST:PORT,
    /// http://HOST:PORT/PATH, unix:PATH); the mains start only then. Repeatable.
    #[arg(long = "ready", value_name = "SIDECAR=TARGET")]
    pub ready: Vec<String>,

    /// Make the sidecars Kubernetes native sidecars (initContainers with restartPolicy: Always).
    #[arg(long)]
    pub native: bool,

    /// The image of the init container that installs the binary.
    #[arg(long, env = "KUBECTL_SUPERVISE_IMAGE", default_value = inject::DEFAULT_IMAGE, value_name = "REF")]
    pub image: String,

    /// What a container without `command` runs before its args: its image's ENTRYPOINT (and
    /// CMD, when it has no args), as a JSON array or space-separated words. Repeatable.
    #[arg(long = "entrypoint", value_name = "NAME=WORDS")]
    pub entrypoints: Vec<String>,

    /// How long the mains wait for the sidecars' readiness before giving up (exit 124).
    /// Default: 5m.
    #[arg(long, value_name = "DURATION")]
    pub wait_timeout: Option<String>,

    /// A sidecar that ends does not stop the mains. By default each sidecar leaves a marker
    /// (--done-file) that every main --requires: a dead sidecar stops them (exit 122).
    #[arg(long)]
    pub no_requires: bool,

    /// The mains wait only for the sidecars --ready names. By default they also wait for
    /// sidecars whose image is known (docker:dind, redis, postgres, mysql, memcached, the
    /// proxies with presets), each on its own readiness.
    #[arg(long)]
    pub no_auto_ready: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub input: Input,
}

#[derive(Args, Debug)]
pub struct WebhookArgs {
    /// The serving certificate, PEM, leaf first (a Secret's tls.crt); re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,

    /// Its private key, PEM (tls.key); re-read with the certificate.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,

    /// The address and port to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR:PORT")]
    pub listen: String,

    /// The image of the init container that installs the binary.
    #[arg(long, env = "KUBECTL_SUPERVISE_IMAGE", default_value = inject::DEFAULT_IMAGE, value_name = "REF")]
    pub image: String,

    /// How long a new connection may take to finish its TLS handshake and begin a request, a
    /// request once begun to arrive whole, and a response to be taken; a slower client is
    /// disconnected.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub request_timeout: String,

    /// Log lines on stderr: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

impl WebhookArgs {
    fn config(&self) -> Result<webhook::Config, Usage> {
        let listen = self
            .listen
            .parse()
            .map_err(|_| Usage(format!("--listen {:?} is not ADDR:PORT", self.listen)))?;
        let request_timeout = supervisor::clock::parse_duration(&self.request_timeout)
            .map_err(|e| Usage(format!("--request-timeout: {e}")))?;
        if request_timeout.is_zero() {
            return Err(Usage("--request-timeout must be greater than zero".into()));
        }
        Ok(webhook::Config {
            listen,
            cert: self.cert.clone(),
            key: self.key.clone(),
            options: inject::Options {
                image: self.image.clone(),
                ..Default::default()
            },
            request_timeout,
        })
    }
}

/// Bad input: one line for the user.
#[derive(Debug)]
struct Usage(String);

impl InjectArgs {
    fn options(&self) -> Result<inject::Options, Usage> {
        let ready = self
            .ready
            .iter()
            .map(|r| inject::parse_ready(r).map_err(|e| Usage(format!("--ready {e}"))))
            .collect::<Result<_, _>>()?;
        let entrypoints = self
            .entrypoints
            .iter()
            .map(|r| inject::parse_entrypoint(r).map_err(|e| Usage(format!("--entrypoint {e}"))))
            .collect::<Result<_, _>>()?;
        if let Some(t) = &self.wait_timeout {
            supervisor::clock::parse_duration(t)
                .map_err(|e| Usage(format!("--wait-timeout: {e}")))?;
        }
        Ok(inject::Options {
            mains: self.mains.clone(),
            ready,
            native: self.native.then_some(true),
            image: self.image.clone(),
            entrypoints,
            wait_timeout: self.wait_timeout.clone(),
            requires: self.no_requires.then_some(false),
            auto_ready: self.no_auto_ready.then_some(false),
        })
    }
}

/// Reads one input, taking no more than `budget` bytes (what is left of
/// [`yaml::MAX_INPUT`] for all inputs together): reading stops one byte past it, so an input
/// that never ends (`/dev/zero`, a pipe or FIFO fed forever) costs no more than the limit.
/// An input that sends nothing and never closes is waited for, as every filter waits for its
/// stdin.
fn read_input(
    path: &std::path::Path,
    stdin: &mut dyn Read,
    budget: usize,
) -> Result<String, Usage> {
    let what = shown(path);
    let cannot = |e: std::io::Error| Usage(format!("cannot read {what}: {e}"));
    let mut bytes = Vec::new();
    let limit = budget as u64 + 1;
    if path.as_os_str() == "-" {
        stdin.take(limit).read_to_end(&mut bytes).map_err(cannot)?;
    } else {
        let f = std::fs::File::open(path).map_err(cannot)?;
        if f.metadata().map_err(cannot)?.is_dir() {
            return Err(Usage(format!(
                "cannot read {what}: it is a directory, not a file of YAML"
            )));
        }
        f.take(limit).read_to_end(&mut bytes).map_err(cannot)?;
    }
    if bytes.len() > budget {
        return Err(Usage(format!(
            "{what}: larger than {} MiB, the most kubectl-supervise reads from all its inputs together",
            yaml::MAX_INPUT >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        Usage(format!(
            "{what}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Every input of `-f`, in order, within [`yaml::MAX_INPUT`] together.
fn read_inputs(files: &[PathBuf], stdin: &mut dyn Read) -> Result<Vec<String>, Usage> {
    let mut budget = yaml::MAX_INPUT;
    let mut texts = Vec::new();
    for f in files {
        let t = read_input(f, stdin, budget)?;
        budget -= t.len();
        texts.push(t);
    }
    Ok(texts)
}

fn shown(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// Runs the command line; returns the exit code. Nothing is written to `out` unless the whole
/// input was read and processed.
pub fn run<I, T>(args: I, stdin: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    run_styled(args, stdin, out, err, false)
}

/// [`run`]; `styled`: help goes out with colours (stdout is a terminal that wants them).
pub fn run_styled<I, T>(
    args: I,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
    styled: bool,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            let text = e.render();
            let _ = if styled {
                write!(out, "{}", text.ansi())
            } else {
                write!(out, "{text}")
            };
            return exit::OK;
        }
        Err(e) => {
            let _ = writeln!(err, "kubectl-supervise: {}", one_line(&e));
            return exit::USAGE;
        }
    };
    let result = match &cli.command {
        Command::Inject(a) => run_inject(a, stdin, out),
        Command::Check(a) => run_check(a, stdin, out, err),
        Command::Webhook(a) => run_webhook(a),
    };
    match result {
        Ok(code) => code,
        Err(Usage(m)) => {
            let _ = writeln!(err, "kubectl-supervise: {m}");
            exit::USAGE
        }
    }
}

/// A clap error as one line: its first line, with clap's suggestion (printed by clap as a
/// separate `tip:` line) folded in.
fn one_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = e.to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    let suggested = [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    .find_map(|k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    });
    match suggested {
        Some(s) => format!("{first} (did you mean {s}?)"),
        None => format!("{first} (see --help)"),
    }
}

fn run_inject(a: &InjectArgs, stdin: &mut dyn Read, out: &mut dyn Write) -> Result<i32, Usage> {
    let opts = a.options()?;
    let mut text = String::new();
    for t in read_inputs(&a.input.files, stdin)? {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if !text.is_empty() {
            text.push_str("---\n");
        }
        text.push_str(&t);
    }
    let result = inject::inject_str(&text, &opts).map_err(|e| Usage(e.to_string()))?;
    out.write_all(result.as_bytes())
        .map_err(|e| Usage(format!("cannot write stdout: {e}")))?;
    Ok(exit::OK)
}

fn run_webhook(a: &WebhookArgs) -> Result<i32, Usage> {
    let config = a.config()?;
    let format = if a.log_format == "json" {
        supervisor::logging::Format::Json
    } else {
        supervisor::logging::Format::Text
    };
    // RUST_LOG, as the supervisor reads it (`debug` also logs each connection's end).
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| supervisor::logging::parse_level(&v))
        .unwrap_or(supervisor::logging::LevelFilter::INFO);
    supervisor::logging::set_mode("webhook");
    supervisor::logging::init(level, format);
    let result = webhook::serve(config, &mut |addr| {
        tracing::info!("listening on https://{addr} (POST /mutate, GET /healthz)");
    });
    match result {
        Ok(()) => Ok(exit::OK),
        Err(webhook::WebhookError::Tls(e)) => Err(Usage(e.to_string())),
        Err(e) => {
            tracing::error!("{e}");
            Ok(exit::FAILED)
        }
    }
}

fn run_check(
    a: &CheckArgs,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Usage> {
    let mut lines = Vec::new();
    let texts = read_inputs(&a.input.files, stdin)?;
    for (f, text) in a.input.files.iter().zip(texts) {
        let findings = check::check_str(&text).map_err(|e| Usage(format!("{}: {e}", shown(f))))?;
        lines.extend(findings.iter().map(|x| format!("{}: {x}", shown(f))));
    }
    for l in &lines {
        let _ = writeln!(out, "{l}");
    }
    if lines.is_empty() {
        return Ok(exit::OK);
    }
    let _ = writeln!(err, "kubectl-supervise: {} problem(s) found", lines.len());
    Ok(exit::PROBLEMS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

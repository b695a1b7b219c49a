//! examples/: every file is known, described, parses strictly as Kubernetes objects, and
//! `kubectl supervise check` finds nothing wrong with it.
//!
//! Theory of operation. The wiring rules live in kubectl-supervise's `check` (one function per
//! rule, each proven to fire in kubectl-supervise/tests/check.rs); this module runs it on every
//! file here through the library, and hands the pods to tests/it/containers.rs, which plays
//! them. What check cannot see from a manifest - what the images docker/ builds bake in - is
//! its image table, compared here with the Dockerfiles themselves.

use k8s_openapi::api::core::v1::PodSpec;
use kubectl_supervise::check;
use kubectl_supervise::images::KNOWN_IMAGES;
pub use kubectl_supervise::manifest::Origin;
use kubectl_supervise::manifest::{self, PodView};
use kubectl_supervise::yaml;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn examples_dir() -> PathBuf {
    repo().join("examples")
}

/// A pod taken from an example (or from inject's output), with where it came from.
#[derive(Clone)]
pub struct ExamplePod {
    pub file: String,
    /// The object, as check names it: `Job/ci-dind`.
    pub name: String,
    pub kind: String,
    pub spec: PodSpec,
    pub origin: Origin,
}

/// Every file under examples/, relative to it, sorted.
pub fn example_files() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {dir:?}: {e}"))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                let rel = p.strip_prefix(base).expect("under base");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&examples_dir(), &examples_dir(), &mut out);
    out
}

pub fn read(rel: &str) -> String {
    let p = examples_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {p:?}: {e}"))
}

/// The pods of a YAML (or JSON) text, read the way `check` reads them.
pub fn pods_of(file: &str, text: &str) -> Result<Vec<ExamplePod>, String> {
    let docs = yaml::parse(text).map_err(|e| format!("{file}: {e}"))?;
    let mut pods = Vec::new();
    for doc in &docs {
        for loc in manifest::locate(doc) {
            let view = manifest::view(doc, &loc).map_err(|e| format!("{file}: {e}"))?;
            if let Some(u) = &view.unknown_field {
                return Err(format!("{file}: {}: {u}", view.object));
            }
            pods.push(ExamplePod {
                file: file.into(),
                name: view.object,
                kind: view.kind,
                spec: view.spec,
                origin: view.origin,
            });
        }
    }
    Ok(pods)
}

/// Every pod of every example.
pub fn all_pods() -> Vec<ExamplePod> {
    let mut pods = Vec::new();
    let mut errors = Vec::new();
    for rel in example_files().iter().filter(|f| !f.ends_with(".md")) {
        match pods_of(rel, &read(rel)) {
            Ok(p) => pods.extend(p),
            Err(e) => errors.push(e),
        }
    }
    assert!(
        errors.is_empty(),
        "examples that do not load:\n  {}",
        errors.join("\n  ")
    );
    pods
}

/// A lone container spec example as a pod.
pub fn container_spec_pod(rel: &str) -> Result<ExamplePod, String> {
    let mut pods = pods_of(rel, &read(rel))?;
    match pods.len() {
        1 => Ok(pods.remove(0)),
        n => Err(format!("{rel}: {n} pods")),
    }
}

/// check's findings for a pod, one line each.
pub fn check_pod(pod: &ExamplePod) -> Vec<String> {
    let view = PodView {
        object: format!("{} {}", pod.file, pod.name),
        origin: pod.origin,
        kind: pod.kind.clone(),
        spec: pod.spec.clone(),
        annotations: BTreeMap::new(),
        unknown_field: None,
    };
    check::check_pod(view)
        .iter()
        .map(ToString::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Every file in examples/. A new one must be added here (and to examples/README.md), so
/// nothing is published unchecked.
const EXPECTED: &[&str] = &[
    "README.md",
    "buildkite/pipeline.yml",
    "cronjob-cloud-sql-proxy.yaml",
    "demo-pod.yaml",
    "dind-job-native-sidecar.yaml",
    "dind-job.yaml",
    "onfailure-job.yaml",
    "pipeline-sidecar/fluent-bit-config.yaml",
    "pipeline-sidecar/fluent-bit-sidecar.json",
    "unwired/cronjob-cloud-sql-proxy.yaml",
    "unwired/demo-pod.yaml",
    "unwired/dind-job-native.yaml",
    "unwired/dind-job-tls.yaml",
    "unwired/dind-job.yaml",
];

#[test]
fn every_example_is_known_and_described() {
    let files = example_files();
    let expected: Vec<String> = EXPECTED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        files, expected,
        "examples/ changed: update EXPECTED and examples/README.md"
    );
    let readme = read("README.md");
    for f in files.iter().filter(|f| *f != "README.md") {
        assert!(
            readme.contains(f.as_str()),
            "examples/README.md does not describe {f}"
        );
    }
    if let Some(f) = files.iter().find(|f| f.ends_with(".rs")) {
        panic!("{f}: Cargo would build .rs files in examples/ as example targets");
    }
}

#[test]
fn kubernetes_manifests_parse_strictly() {
    let pods = all_pods();
    let mut per_file: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &pods {
        *per_file.entry(p.file.as_str()).or_default() += 1;
    }
    // Files of other objects than pods.
    let no_pods = ["pipeline-sidecar/fluent-bit-config.yaml"];
    for f in EXPECTED
        .iter()
        .filter(|f| !f.ends_with(".md") && !no_pods.contains(f))
    {
        assert_eq!(
            per_file.get(f),
            Some(&1),
            "{f} should hold exactly one pod: {per_file:?}"
        );
    }
    // Documents that are not pods are parsed strictly too.
    let config = yaml::parse(&read("pipeline-sidecar/fluent-bit-config.yaml")).expect("yaml");
    manifest::strict_object(&config[0]).expect("the ConfigMap parses strictly");
}

#[test]
fn check_finds_nothing_in_any_example() {
    let mut problems = Vec::new();
    for rel in example_files().iter().filter(|f| !f.ends_with(".md")) {
        let findings = check::check_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        problems.extend(findings.iter().map(|f| format!("{rel}: {f}")));
    }
    assert!(
        problems.is_empty(),
        "kubectl supervise check:\n  {}",
        problems.join("\n  ")
    );
    // The finder really finds the command lines: a check with nothing to check passes too.
    let lines: usize = all_pods()
        .iter()
        .flat_map(|p| {
            p.spec
                .containers
                .iter()
                .chain(p.spec.init_containers.iter().flatten())
        })
        .map(|c| kubectl_supervise::command::invocations(c).len())
        .sum();
    assert!(
        lines >= 20,
        "only {lines} supervisor command lines found: is the finder broken?"
    );
}

/// What a docker/ Dockerfile bakes into its final stage: (ENTRYPOINT, CMD, ENV).
fn baked(rel: &str) -> (Vec<String>, Vec<String>, Vec<(String, String)>) {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let joined = text.replace("\\\n", " ");
    let (mut entry, mut cmd, mut env) = (Vec::new(), Vec::new(), Vec::new());
    for line in joined.lines().map(str::trim) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let json = || -> Vec<String> {
            serde_json::from_str(rest).unwrap_or_else(|e| panic!("{rel}: {word} {rest}: {e}"))
        };
        match word.to_ascii_uppercase().as_str() {
            "FROM" => (entry, cmd, env) = (Vec::new(), Vec::new(), Vec::new()),
            "ENTRYPOINT" => entry = json(),
            "CMD" => cmd = json(),
            "ENV" => {
                let (k, v) = rest
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{rel}: ENV {rest}"));
                env.push((k.to_string(), v.trim_matches('"').to_string()));
            }
            _ => {}
        }
    }
    (entry, cmd, env)
}

/// The image table rows for the images docker/ builds, and their Dockerfiles.
const DOCKER_IMAGES: &[(&str, &str)] = &[
    ("*/supervisor:*", "docker/Dockerfile"),
    ("*/dind-supervised:*", "docker/dind/Dockerfile"),
    ("*/ci-agent:*", "docker/ci-agent/Dockerfile"),
    ("*/kubectl-supervise:*", "docker/webhook/Dockerfile"),
];

#[test]
fn known_images_match_the_dockerfiles() {
    for (pattern, file) in DOCKER_IMAGES {
        let row = KNOWN_IMAGES
            .iter()
            .find(|k| k.pattern == *pattern)
            .unwrap_or_else(|| panic!("no image table row {pattern}"));
        let (entry, cmd, env) = baked(file);
        let row_entry = row.entrypoint.map(|e| e.to_vec());
        let entry: Vec<&str> = entry.iter().map(String::as_str).collect();
        assert_eq!(row_entry, Some(entry), "{file} ENTRYPOINT");
        assert_eq!(row.cmd, cmd, "{file} CMD");
        let env_supervisor: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SUPERVISOR_"))
            .collect();
        let row_env: Vec<(String, String)> = row
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(row_env, env_supervisor, "{file} ENV");
    }
    // Every registry.example.com image an example names is one docker/ builds.
    for pod in all_pods() {
        for c in pod
            .spec
            .containers
            .iter()
            .chain(pod.spec.init_containers.iter().flatten())
        {
            let image = c.image.as_deref().unwrap_or("");
            if let Some(rest) = image.strip_prefix("registry.example.com/") {
                assert!(
                    DOCKER_IMAGES.iter().any(|(p, _)| {
                        kubectl_supervise::images::matches(p, &format!("x/{rest}"))
                    }),
                    "{} {}: {image} is not built by any docker/ Dockerfile",
                    pod.file,
                    c.name
                );
            }
        }
    }
}

/// The webhook's Deployment, run as it is written: its container's command with both static
/// binaries (`supervisor main --stop-delay ... -- kubectl-supervise webhook ...`), the TLS
/// Secret's files made with openssl, a recorded review over HTTPS with curl; SIGTERM then
/// leaves it serving for --stop-delay before it exits 0.
#[test]
fn webhook_deployment_command_serves() {
    let tools = ["openssl", "curl"].map(|t| {
        std::process::Command::new(t)
            .arg("--version")
            .output()
            .is_ok()
    });
    if tools.contains(&false) {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI is set, so this test must run, but openssl or curl is missing"
        );
        eprintln!("\n=== SKIPPED (not in CI): needs openssl and curl\n");
        return;
    }
    let host = "supervisor-webhook.supervisor-system.svc";
    let dir = crate::util::tempdir();
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={host}")])
        .args(["-addext", &format!("subjectAltName=DNS:{host}")])
        .args(["-keyout", "tls.key", "-out", "tls.crt"])
        .current_dir(dir.path())
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");

    let text = std::fs::read_to_string(repo().join("deploy/webhook/base/deployment.yaml"))
        .expect("the webhook's Deployment");
    let deployment = yaml::parse(&text).expect("yaml")[0].to_json();
    let command: Vec<String> = serde_json::from_value(
        deployment["spec"]["template"]["spec"]["containers"][0]["command"].clone(),
    )
    .expect("a command");
    let supervisor = crate::containers::static_bin();
    let plugin = supervisor.with_file_name("kubectl-supervise");
    assert!(plugin.exists(), "{plugin:?}: build the whole workspace");
    let tls = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let argv: Vec<String> = command
        .iter()
        .map(|w| match w.as_str() {
            "/usr/local/bin/supervisor" => supervisor.to_string_lossy().into_owned(),
            "/usr/local/bin/kubectl-supervise" => plugin.to_string_lossy().into_owned(),
            "--cert=/tls/tls.crt" => format!("--cert={}", tls("tls.crt")),
            "--key=/tls/tls.key" => format!("--key={}", tls("tls.key")),
            w if w.starts_with("--listen=") => "--listen=127.0.0.1:0".into(),
            w => w.to_string(),
        })
        .collect();
    assert!(
        argv.iter().any(|w| w.starts_with("--stop-delay=")),
        "{argv:?}"
    );
    // stderr (where both log) onto stdout, which the harness reads line by line.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "exec \"$0\" \"$@\" 2>&1"]).args(&argv);
    let mut p = crate::util::start(cmd);
    let line = p.expect_line("listening on https://", crate::util::DEADLINE);
    let addr = line
        .split("listening on https://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("an address")
        .to_string();
    let port = addr.rsplit(':').next().expect("a port").to_string();
    let curl = |path: &str, body: Option<&Path>| {
        let mut c = std::process::Command::new("curl");
        c.args(["-sS", "--max-time", "10", "--cacert", &tls("tls.crt")])
            .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
            .arg(format!("https://{host}:{port}{path}"));
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(format!("@{}", b.display()));
        }
        let out = c.output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let review = repo().join("kubectl-supervise/tests/webhook/job-pod.json");
    let answer = curl("/mutate", Some(&review));
    assert!(answer.contains("\"patchType\":\"JSONPatch\""), "{answer}");
    let stopping = std::time::Instant::now();
    p.signal(15);
    p.expect_line("keeps running for --stop-delay", crate::util::DEADLINE);
    // During --stop-delay the webhook still answers.
    assert_eq!(curl("/healthz", None), "ok\n");
    let out = p.finish_with(crate::util::DEADLINE);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(
        stopping.elapsed() >= std::time::Duration::from_secs(4),
        "stopped before --stop-delay: {:?}{out}",
        stopping.elapsed()
    );
}

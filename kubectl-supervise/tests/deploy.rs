//! deploy/webhook/ as a platform team applies it: each overlay rendered by `kubectl kustomize`
//! (the openssl one after the docs' recipe ran in it, as the docs say), every document parsed
//! strictly with the Kubernetes types (cert-manager's with types of ours below, for the fields
//! they use), and the settings docs/kubectl-supervise.md promises checked where they live:
//! two replicas spread with a PodDisruptionBudget, limits, a restricted security context,
//! probes, the image, the two ways in with `reinvocationPolicy: IfNeeded`, and the TLS
//! wiring (the Secret the pods mount is the one the overlay makes, the caBundle its CA).
//! Without kubectl or openssl the tests are skipped loudly, except under CI, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // src/ only, as in tests/it

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubectl_supervise::{manifest, yaml};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const IMAGE: &str = "ghcr.io/supervisor-dev/kubectl-supervise:0.2.0";

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// None (a skip) when `tool` is missing outside CI.
fn have(tool: &str, args: &[&str]) -> Option<()> {
    if Command::new(tool).args(args).output().is_ok() {
        return Some(());
    }
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "CI is set, so the deploy tests must run, but {tool} is not installed"
    );
    eprintln!("\n=== SKIPPED (not in CI): the deploy tests need {tool}\n");
    None
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The block of docs/kubectl-supervise.md the docs say the tests run (the openssl recipe).
fn recipe() -> String {
    let doc = std::fs::read_to_string(repo("docs/kubectl-supervise.md")).unwrap();
    let marker = "<!-- tests: kubectl-supervise/tests/webhook.rs runs the next block -->";
    let after = &doc[doc.find(marker).expect("the recipe's marker") + marker.len()..];
    let body = &after[after.find("```sh\n").unwrap() + 6..];
    body[..body.find("```").unwrap()].to_string()
}

/// The overlay rendered in a copy of deploy/webhook/ (the openssl one with the recipe's files
/// made in it): its documents, by kind and name, and the copy.
fn render(overlay: &str) -> Option<(Docs, tempfile::TempDir)> {
    have("kubectl", &["version", "--client"])?;
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&repo("deploy/webhook"), tmp.path());
    let dir = tmp.path().join("overlays").join(overlay);
    if overlay == "openssl" {
        have("openssl", &["version"])?;
        let out = Command::new("sh")
            .args(["-ec", &recipe()])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "kubectl kustomize {overlay}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut docs = Docs::default();
    for node in yaml::parse(&text).expect("kustomize writes YAML") {
        let mut v = node.to_json();
        unwrap_base64(&mut v);
        let key = (
            v["kind"].as_str().unwrap().to_string(),
            v["metadata"]["name"].as_str().unwrap().to_string(),
        );
        assert!(docs.0.insert(key.clone(), v).is_none(), "{key:?} twice");
    }
    Some((docs, tmp))
}

/// kustomize writes base64 (a Secret's data, the caBundle it copies) in lines of 76; the API
/// server's decoder (Go's encoding/base64) skips newlines, k8s-openapi's does not: join them.
fn unwrap_base64(v: &mut Value) {
    let join = |s: &mut Value| {
        if let Some(t) = s.as_str() {
            *s = Value::String(t.split_whitespace().collect());
        }
    };
    if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut) {
        data.values_mut().for_each(join);
    }
    if let Some(hooks) = v.get_mut("webhooks").and_then(Value::as_array_mut) {
        for h in hooks {
            if let Some(b) = h.pointer_mut("/clientConfig/caBundle") {
                join(b);
            }
        }
    }
}

#[derive(Default)]
struct Docs(BTreeMap<(String, String), Value>);

impl Docs {
    fn get(&self, kind: &str, name: &str) -> &Value {
        self.0
            .get(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", self.0.keys()))
    }

    /// Every document, parsed strictly; the typed objects the checks use.
    fn strict(&self) -> Typed {
        let mut t = Typed::default();
        for ((kind, name), v) in &self.0 {
            let what = format!("{kind} {name}");
            match kind.as_str() {
                "Namespace" => drop(parse::<Namespace>(v, &what)),
                "ServiceAccount" => drop(parse::<ServiceAccount>(v, &what)),
                "Secret" => t.secrets.push(parse(v, &what)),
                "Service" => t.services.push(parse(v, &what)),
                "Deployment" => t.deployments.push(parse(v, &what)),
                "PodDisruptionBudget" => t.pdbs.push(parse(v, &what)),
                "MutatingWebhookConfiguration" => t.webhooks.push(parse(v, &what)),
                "Issuer" => t.issuers.push(parse(v, &what)),
                "Certificate" => t.certificates.push(parse(v, &what)),
                other => panic!("{what}: a kind the tests do not know: {other}"),
            }
        }
        t
    }
}

/// `v` as T, strictly: T keeps every field of it.
fn parse<T: serde::de::DeserializeOwned + Serialize>(v: &Value, what: &str) -> T {
    manifest::strict(v).unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[derive(Default)]
struct Typed {
    secrets: Vec<Secret>,
    services: Vec<Service>,
    deployments: Vec<Deployment>,
    pdbs: Vec<PodDisruptionBudget>,
    webhooks: Vec<MutatingWebhookConfiguration>,
    issuers: Vec<CmObject<IssuerSpec>>,
    certificates: Vec<CmObject<CertificateSpec>>,
}

// cert-manager's types (cert-manager.io/v1), for the fields the overlay uses; any other field
// fails the parse.
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CmObject<S> {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: S,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    self_signed: Option<BTreeMap<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca: Option<CaIssuer>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CaIssuer {
    secret_name: String,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CertificateSpec {
    secret_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    common_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns_names: Option<Vec<String>>,
    #[serde(rename = "isCA", skip_serializing_if = "Option::is_none")]
    is_ca: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renew_before: Option<String>,
    private_key: PrivateKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    usages: Option<Vec<KeyUsage>>,
    issuer_ref: IssuerRef,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrivateKey {
    algorithm: KeyAlgorithm,
    size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_policy: Option<RotationPolicy>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum KeyAlgorithm {
    #[serde(rename = "RSA")]
    Rsa,
    #[serde(rename = "ECDSA")]
    Ecdsa,
    Ed25519,
}

#[derive(Serialize, Deserialize, Debug)]
enum RotationPolicy {
    Never,
    Always,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "lowercase")]
enum KeyUsage {
    #[serde(rename = "server auth")]
    ServerAuth,
    #[serde(rename = "digital signature")]
    DigitalSignature,
    #[serde(rename = "key encipherment")]
    KeyEncipherment,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IssuerRef {
    kind: String,
    name: String,
}

/// What both overlays share: the base's settings, checked on the rendered objects. Returns the
/// name of the Secret the pods mount.
fn check_base(t: &Typed) -> String {
    let [d] = t.deployments.as_slice() else {
        panic!("one Deployment")
    };
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.as_ref().unwrap();
    let labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    let selects =
        |sel: &BTreeMap<String, String>| sel.iter().all(|(k, v)| labels.get(k) == Some(v));
    assert!(selects(spec.selector.match_labels.as_ref().unwrap()));
    // Spread over nodes and zones, and a disruption budget that keeps one replica.
    let spread = pod.topology_spread_constraints.as_ref().unwrap();
    let keys: Vec<&str> = spread.iter().map(|c| c.topology_key.as_str()).collect();
    assert_eq!(
        keys,
        ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    );
    for c in spread {
        assert!(selects(
            c.label_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()
        ));
    }
    let [pdb] = t.pdbs.as_slice() else {
        panic!("one PodDisruptionBudget")
    };
    let pdb = pdb.spec.as_ref().unwrap();
    assert!(selects(
        pdb.selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()
    ));
    assert_eq!(
        pdb.min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    // Restricted: non-root, no privilege escalation, no capabilities, read-only root,
    // RuntimeDefault seccomp; no API token.
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
    let [c] = pod.containers.as_slice() else {
        panic!("one container")
    };
    assert_eq!(c.image.as_deref(), Some(IMAGE));
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.privileged, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    // Requests and limits for both resources.
    let r = c.resources.as_ref().unwrap();
    for q in [&r.requests, &r.limits] {
        let q = q.as_ref().unwrap();
        assert!(q.contains_key("cpu") && q.contains_key("memory"), "{q:?}");
    }
    // Both probes on /healthz over HTTPS.
    for p in [&c.readiness_probe, &c.liveness_probe] {
        let get = p.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
    }
    // The command the examples test runs: supervisor main with a stop delay, the webhook.
    let cmd = c.command.as_ref().unwrap();
    assert_eq!(cmd[0..2], ["/usr/local/bin/supervisor", "main"]);
    assert!(cmd.iter().any(|w| w.starts_with("--stop-delay=")));
    assert!(cmd.iter().any(|w| w == "webhook"));
    // The Service the configuration calls selects these pods.
    let [svc] = t.services.as_slice() else {
        panic!("one Service")
    };
    assert!(selects(
        svc.spec.as_ref().unwrap().selector.as_ref().unwrap()
    ));
    check_configuration(t, svc);
    pod.volumes.as_ref().unwrap()[0]
        .secret
        .as_ref()
        .unwrap()
        .secret_name
        .clone()
        .unwrap()
}

/// The MutatingWebhookConfiguration: two ways in, both reinvoked if needed, never blocking,
/// both calling the Service.
fn check_configuration(t: &Typed, svc: &Service) {
    let [cfg] = t.webhooks.as_slice() else {
        panic!("one MutatingWebhookConfiguration")
    };
    let hooks = cfg.webhooks.as_ref().unwrap();
    assert_eq!(hooks.len(), 2);
    let selector_labels =
        |s: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
            s.as_ref()
                .and_then(|s| s.match_labels.clone())
                .unwrap_or_default()
        };
    let by_namespace = &hooks[0];
    assert_eq!(
        selector_labels(&by_namespace.namespace_selector).get("supervisor/inject"),
        Some(&"enabled".to_string())
    );
    let by_label = &hooks[1];
    assert_eq!(
        selector_labels(&by_label.object_selector).get("supervisor/inject"),
        Some(&"true".to_string())
    );
    // The namespace way leaves labelled pods to the label way: never sent twice.
    let e = &by_namespace
        .object_selector
        .as_ref()
        .unwrap()
        .match_expressions
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        (e.key.as_str(), e.operator.as_str()),
        ("supervisor/inject", "DoesNotExist")
    );
    let meta = svc.metadata.clone();
    for h in hooks {
        assert_eq!(
            h.reinvocation_policy.as_deref(),
            Some("IfNeeded"),
            "{}",
            h.name
        );
        assert_eq!(h.failure_policy.as_deref(), Some("Ignore"));
        assert_eq!(h.side_effects, "None");
        let s = h.client_config.service.as_ref().unwrap();
        assert_eq!(Some(&s.name), meta.name.as_ref());
        assert_eq!(Some(&s.namespace), meta.namespace.as_ref());
        assert_eq!(s.path.as_deref(), Some("/mutate"));
        let port = svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port;
        assert_eq!(s.port, Some(port));
    }
}

#[test]
fn the_openssl_overlay_serves_the_recipes_certificate() {
    let Some((docs, tmp)) = render("openssl") else {
        return;
    };
    let t = docs.strict();
    let mounted = check_base(&t);
    let [secret] = t.secrets.as_slice() else {
        panic!("one Secret")
    };
    assert_eq!(secret.metadata.name.as_ref(), Some(&mounted));
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.as_ref().unwrap();
    let made = tmp.path().join("overlays/openssl");
    for f in ["tls.crt", "tls.key", "ca.crt"] {
        assert_eq!(data[f].0, std::fs::read(made.join(f)).unwrap(), "{f}");
    }
    let ca = std::fs::read(made.join("ca.crt")).unwrap();
    for h in t.webhooks[0].webhooks.as_ref().unwrap() {
        assert_eq!(
            h.client_config.ca_bundle.as_ref().unwrap().0,
            ca,
            "{}",
            h.name
        );
    }
}

#[test]
fn the_cert_manager_overlay_has_the_certificate_issued_and_its_ca_injected() {
    let Some((docs, _tmp)) = render("cert-manager") else {
        return;
    };
    let t = docs.strict();
    let mounted = check_base(&t);
    assert!(t.secrets.is_empty(), "cert-manager writes the Secret");
    let cert = t
        .certificates
        .iter()
        .find(|c| c.spec.secret_name == mounted)
        .expect("a Certificate for the Secret the pods mount");
    let svc = &t.services[0].metadata;
    let host = format!(
        "{}.{}.svc",
        svc.name.as_ref().unwrap(),
        svc.namespace.as_ref().unwrap()
    );
    assert!(
        cert.spec.dns_names.as_ref().unwrap().contains(&host),
        "{host}"
    );
    assert!(
        cert.spec
            .usages
            .as_ref()
            .unwrap()
            .contains(&KeyUsage::ServerAuth)
    );
    // Issued by the CA issuer, whose key is the CA certificate's, itself self-signed.
    let issuer = |name: &str| {
        t.issuers
            .iter()
            .find(|i| i.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Issuer {name}"))
    };
    let ca = issuer(&cert.spec.issuer_ref.name)
        .spec
        .ca
        .as_ref()
        .expect("a CA issuer");
    let ca_cert = t
        .certificates
        .iter()
        .find(|c| c.spec.secret_name == ca.secret_name)
        .expect("the CA's Certificate");
    assert_eq!(ca_cert.spec.is_ca, Some(true));
    assert!(
        issuer(&ca_cert.spec.issuer_ref.name)
            .spec
            .self_signed
            .is_some()
    );
    // The CA injector fills caBundle from the serving Certificate.
    let cfg = &t.webhooks[0];
    let inject =
        cfg.metadata.annotations.as_ref().unwrap()["cert-manager.io/inject-ca-from"].clone();
    assert_eq!(
        inject,
        format!(
            "{}/{}",
            cert.metadata.namespace.as_ref().unwrap(),
            cert.metadata.name.as_ref().unwrap()
        )
    );
    for h in cfg.webhooks.as_ref().unwrap() {
        assert!(h.client_config.ca_bundle.is_none());
    }
    let ns = docs.get("Namespace", svc.namespace.as_ref().unwrap());
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

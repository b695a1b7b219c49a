//! One AdmissionReview in, one AdmissionReview out: the webhook's decision, with no I/O.
//!
//! Theory of operation. A body that is not an `admission.k8s.io/v1` AdmissionReview with a
//! request and a `uid` is refused ([`BadReview`], which the server answers with 400); the API
//! server then applies the webhook's `failurePolicy`. Every well-formed review is allowed:
//! whatever goes wrong with a pod (it is not a Pod, it did not opt in, an annotation does not
//! parse, a container's entrypoint is unknown) the answer is `allowed: true` without a patch,
//! with a `warnings` entry the user sees in `kubectl` when there is something to fix. A pod that
//! opts in (`supervisor/inject: "true"`) goes through `inject` exactly as `kubectl supervise
//! inject` would handle it, its options read from the same annotations, and the answer carries
//! the JSON Patch (RFC 6902, by the json-patch crate's `diff`) from the pod as sent to the pod
//! as injected. [`respond`] wraps it all as the HTTP answer, for the server and the fuzzer.
//!
//! Memory is bounded before the body is parsed: a document of more than [`MAX_TOKENS`] JSON
//! tokens (a `[0,0,0,...]` body costs 32 bytes of tree per 2 bytes of input) is not parsed
//! into a tree; its envelope is read without the object, and the pod is allowed unwired with
//! a warning.

use crate::inject::{self, Options, annotation};
use base64::Engine;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// The API server shows each warning to the user; it may cut longer ones.
const WARNING_MAX: usize = 256;

/// The most JSON tokens (strings, arrays, objects and the commas between values) a review may
/// hold for its pod to be wired. A pod worth wiring has a few thousand; this is a hundred times
/// that, and keeps the tree of the largest review a few tens of MiB.
pub const MAX_TOKENS: usize = 256 * 1024;

/// A body the webhook cannot answer: the server responds 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadReview {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not an {API_VERSION} {KIND} (apiVersion {api_version:?}, kind {kind:?})")]
    WrongKind { api_version: String, kind: String },
    #[error("the {KIND} has no request")]
    NoRequest,
    #[error("the request has no uid")]
    NoUid,
}

/// An AdmissionReview; `O` is how much of the object is read (a tree, or nothing).
#[derive(Deserialize)]
struct Review<O> {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<Request<O>>,
}

#[derive(Deserialize)]
struct Request<O> {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    kind: Gvk,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    namespace: String,
    object: Option<O>,
}

#[derive(Deserialize, Default)]
struct Gvk {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

/// What became of the pod, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Patched: the number of JSON Patch operations.
    Wired(usize),
    /// Allowed as it is, and why (not a pod, not opted in, wired already...).
    Untouched(&'static str),
    /// Allowed as it is because it could not be wired: the warning the user gets.
    Refused(String),
}

/// The answer to one review.
#[derive(Debug)]
pub struct Answer {
    /// The AdmissionReview to send back.
    pub body: Vec<u8>,
    /// `namespace/name` of the pod (its generateName with `*` before the API server names it).
    pub pod: String,
    pub outcome: Outcome,
}

/// The HTTP answer to a `POST /mutate` body: 200 with an AdmissionReview, or 400 with a line
/// saying why the body is not one.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// What to log (the server logs; this function does no I/O).
    pub result: Result<(String, Outcome), BadReview>,
}

/// Answers one `POST /mutate` body: bytes in, response out.
pub fn respond(body: &[u8], opts: &Options) -> Reply {
    match review(body, opts) {
        Ok(a) => Reply {
            status: 200,
            content_type: "application/json",
            body: a.body,
            result: Ok((a.pod, a.outcome)),
        },
        Err(e) => Reply {
            status: 400,
            content_type: "text/plain",
            body: format!("{e}\n").into_bytes(),
            result: Err(e),
        },
    }
}

/// Decides one review; `body` is the request body.
pub fn review(body: &[u8], opts: &Options) -> Result<Answer, BadReview> {
    if tokens_over(body, MAX_TOKENS) {
        return too_large(body);
    }
    let r: Review<Value> =
        serde_json::from_slice(body).map_err(|e| BadReview::NotJson(e.to_string()))?;
    let req = checked(r)?;
    let (outcome, patch) = decide(&req, opts);
    Ok(answer(&req, outcome, patch))
}

/// The envelope's checks: a v1 AdmissionReview with a request that has a uid.
fn checked<O>(r: Review<O>) -> Result<Request<O>, BadReview> {
    if r.api_version != API_VERSION || r.kind != KIND {
        return Err(BadReview::WrongKind {
            api_version: r.api_version,
            kind: r.kind,
        });
    }
    let req = r.request.ok_or(BadReview::NoRequest)?;
    if req.uid.is_empty() {
        return Err(BadReview::NoUid);
    }
    Ok(req)
}

/// A review too large to read as a tree: its envelope read without the object, the pod allowed
/// as it is.
fn too_large(body: &[u8]) -> Result<Answer, BadReview> {
    let r: Review<IgnoredAny> =
        serde_json::from_slice(body).map_err(|e| BadReview::NotJson(e.to_string()))?;
    let req = checked(r)?;
    let req = Request {
        uid: req.uid,
        kind: req.kind,
        operation: req.operation,
        namespace: req.namespace,
        object: None,
    };
    let why = format!(
        "not wired: the review holds more than {MAX_TOKENS} JSON values, more than a pod this \
         webhook wires"
    );
    Ok(answer(&req, Outcome::Refused(why), None))
}

/// Whether `json` holds more than `max` tokens: string starts, array and object starts, and
/// commas, outside strings (an upper bound of the values a parser would build, in one pass
/// and no allocation).
pub fn tokens_over(json: &[u8], max: usize) -> bool {
    let (mut n, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                n += 1;
            }
            b'[' | b'{' | b',' => n += 1,
            _ => continue,
        }
        if n > max {
            return true;
        }
    }
    false
}

/// The AdmissionReview that answers `req`.
fn answer(req: &Request<Value>, outcome: Outcome, patch: Option<json_patch::Patch>) -> Answer {
    let pod = pod_name(req);
    let mut response = json!({"uid": req.uid, "allowed": true});
    if let Some(ops) = &patch {
        let text = serde_json::to_vec(ops).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
    if let Outcome::Refused(why) = &outcome {
        response["warnings"] = json!([warning(why)]);
    }
    let answer = json!({"apiVersion": API_VERSION, "kind": KIND, "response": response});
    Answer {
        body: serde_json::to_vec(&answer).unwrap_or_default(),
        pod,
        outcome,
    }
}

fn pod_name(req: &Request<Value>) -> String {
    let meta = req.object.as_ref().and_then(|o| o.get("metadata"));
    let text = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
    let name = match (text("name"), text("generateName")) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(g)) => format!("{g}*"),
        _ => "(unnamed)".into(),
    };
    let ns = text("namespace").unwrap_or(&req.namespace);
    if ns.is_empty() {
        name
    } else {
        format!("{ns}/{name}")
    }
}

/// What to do with the pod: the outcome and, when it is wired, the patch.
fn decide(req: &Request<Value>, opts: &Options) -> (Outcome, Option<json_patch::Patch>) {
    let g = &req.kind;
    if !(g.group.is_empty() && g.version == "v1" && g.kind == "Pod") {
        let what = format!("{}/{} {}", g.group, g.version, g.kind);
        return (
            Outcome::Refused(format!(
                "only Pods are wired, not {}: fix the webhook's rules",
                what.trim_start_matches('/')
            )),
            None,
        );
    }
    if req.operation != "CREATE" {
        return (Outcome::Untouched("not a CREATE"), None);
    }
    let Some(object) = req.object.as_ref().filter(|o| o.is_object()) else {
        return (
            Outcome::Refused("the review carries no pod object".into()),
            None,
        );
    };
    let meta = |field: &str| {
        object
            .pointer(&format!("/metadata/{field}"))
            .and_then(|a| a.get(annotation::INJECT))
            .and_then(Value::as_str)
    };
    // The annotation decides; without it, the label (the configuration's objectSelector sends
    // pods labelled supervisor/inject=true from any namespace).
    match (meta("annotations"), meta("labels")) {
        (Some("true"), _) | (None, Some("true")) => {}
        (None | Some("false"), _) => return (Outcome::Untouched("not opted in"), None),
        (Some(other), _) => {
            return (
                Outcome::Refused(format!(
                    "annotation {}: {other:?} is not true or false: not wired",
                    annotation::INJECT
                )),
                None,
            );
        }
    }
    // Objects in a review carry their type, but inject finds pods by it: make sure.
    let mut pod = object.clone();
    pod["apiVersion"] = json!("v1");
    pod["kind"] = json!("Pod");
    match inject::inject_json(&pod, opts) {
        Ok(None) => (Outcome::Untouched("wired already"), None),
        Ok(Some(wired)) => {
            let ops = json_patch::diff(&pod, &wired);
            (Outcome::Wired(ops.0.len()), Some(ops))
        }
        Err(e) => (Outcome::Refused(format!("not wired: {e}")), None),
    }
}

/// `supervisor: ...`, cut to what the API server passes on.
fn warning(text: &str) -> String {
    let full = format!("supervisor: {text}");
    if full.chars().count() <= WARNING_MAX {
        return full;
    }
    let mut cut: String = full.chars().take(WARNING_MAX - 3).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(request: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": API_VERSION, "kind": KIND, "request": request}))
            .unwrap_or_default()
    }

    fn pod(annotations: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "job-", "namespace": "ci", "annotations": annotations},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": "a", "image": "busybox:1.36", "command": ["true"]}
            ]}
        })
    }

    fn request(object: Value) -> Value {
        json!({
            "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE", "namespace": "ci", "object": object
        })
    }

    fn response(a: &Answer) -> Value {
        serde_json::from_slice::<Value>(&a.body).unwrap_or_default()["response"].clone()
    }

    #[test]
    fn bad_bodies_are_refused() {
        let o = Options::default();
        assert!(matches!(
            review(b"{\"apiVersion\":", &o),
            Err(BadReview::NotJson(_))
        ));
        assert!(matches!(review(b"[1, 2]", &o), Err(BadReview::NotJson(_))));
        let v1beta1 = br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#;
        assert!(matches!(
            review(v1beta1, &o),
            Err(BadReview::WrongKind { .. })
        ));
        let no_request = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert_eq!(review(no_request, &o).err(), Some(BadReview::NoRequest));
        assert_eq!(
            review(&body(json!({"uid": ""})), &o).err(),
            Some(BadReview::NoUid)
        );
    }

    #[test]
    fn every_good_review_is_allowed() {
        let o = Options::default();
        let a = review(&body(request(pod(json!({})))), &o).expect("answer");
        assert_eq!(a.outcome, Outcome::Untouched("not opted in"));
        assert_eq!(a.pod, "ci/job-*");
        assert_eq!(response(&a), json!({"uid": "u-1", "allowed": true}));

        let a = review(
            &body(request(pod(json!({"supervisor/inject": "true"})))),
            &o,
        )
        .expect("answer");
        assert!(matches!(a.outcome, Outcome::Wired(n) if n > 0), "{a:?}");
        let r = response(&a);
        assert_eq!(r["patchType"], "JSONPatch");
        assert!(r["patch"].as_str().is_some_and(|p| !p.is_empty()));

        // The label opts in too; the annotation, when there is one, decides.
        let mut labelled = pod(json!({}));
        labelled["metadata"]["labels"] = json!({"supervisor/inject": "true"});
        let a = review(&body(request(labelled.clone())), &o).expect("answer");
        assert!(matches!(a.outcome, Outcome::Wired(_)), "{a:?}");
        labelled["metadata"]["annotations"] = json!({"supervisor/inject": "false"});
        let a = review(&body(request(labelled)), &o).expect("answer");
        assert_eq!(a.outcome, Outcome::Untouched("not opted in"));

        let maybe = pod(json!({"supervisor/inject": "yes"}));
        let a = review(&body(request(maybe)), &o).expect("answer");
        let w = response(&a)["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            w.starts_with("supervisor: annotation supervisor/inject: \"yes\""),
            "{w}"
        );

        let mut deploy = request(json!({"kind": "Deployment"}));
        deploy["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        let a = review(&body(deploy), &o).expect("answer");
        assert_eq!(response(&a)["allowed"], true);
        assert!(matches!(&a.outcome, Outcome::Refused(w) if w.contains("apps/v1 Deployment")));
    }

    #[test]
    fn a_review_too_large_to_read_as_a_tree_is_allowed_with_a_warning() {
        // {, "a", [, two commas, one string: six, whatever the string holds.
        assert!(!tokens_over(br#"{"a": [1, 2, "x,[{\","]}"#, 6));
        assert!(tokens_over(br#"{"a": [1, 2, "x,[{\","]}"#, 5));
        assert!(tokens_over(br#"{"a": [1, 2, 3, 4, 5]}"#, 5));
        let mut object = pod(json!({"supervisor/inject": "true"}));
        object["spec"]["containers"][0]["args"] = json!(vec![""; MAX_TOKENS]);
        let a = review(&body(request(object)), &Options::default()).expect("answer");
        let r = response(&a);
        assert_eq!(r["allowed"], true);
        assert!(r.get("patch").is_none());
        let w = r["warnings"][0].as_str().unwrap_or_default();
        assert!(w.contains("more than 262144 JSON values"), "{w}");
        // The envelope is still checked.
        let no_uid = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"","object":[0,0,0]}}"#;
        assert!(tokens_over(no_uid, 3));
    }

    #[test]
    fn warnings_fit_what_the_api_server_keeps() {
        let long = "x".repeat(1000);
        assert_eq!(warning(&long).chars().count(), WARNING_MAX);
        assert_eq!(
            warning("é".repeat(300).as_str()).chars().count(),
            WARNING_MAX
        );
    }
}

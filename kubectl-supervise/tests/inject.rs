//! `inject` against golden files, its guarantees (idempotent, strictly valid, check-clean,
//! everything else preserved), and its refusals.
//!
//! Golden files live in tests/golden/; `UPDATE_GOLDEN=1 cargo test -p kubectl-supervise
//! --test inject` rewrites them after a deliberate change (review the diff).

// Test helpers may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::core::v1::PodSpec;
use kubectl_supervise::inject::{self, InjectError, Options};
use kubectl_supervise::manifest;
use kubectl_supervise::{check, yaml};
use std::path::PathBuf;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn opts(mains: &[&str], ready: &[(&str, &str)]) -> Options {
    Options {
        mains: mains.iter().map(|s| s.to_string()).collect(),
        ready: ready
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// The unwired examples and how their tests inject them: (input, golden, options). The
/// known sidecars (dind, redis, the Cloud SQL proxy) need no `--ready`.
pub fn cases() -> Vec<(&'static str, &'static str, Options)> {
    let mut native = opts(&["build"], &[]);
    native.native = Some(true);
    let mut dind = opts(&["build"], &[]);
    dind.wait_timeout = Some("2m".into());
    vec![
        ("examples/unwired/dind-job.yaml", "dind-job.yaml", dind),
        (
            "examples/unwired/dind-job.yaml",
            "dind-job-native.yaml",
            native,
        ),
        (
            "examples/unwired/dind-job-tls.yaml",
            "dind-job-tls.yaml",
            opts(&["build"], &[]),
        ),
        (
            "examples/unwired/dind-job-native.yaml",
            "dind-job-native-sidecar.yaml",
            opts(&["build"], &[]),
        ),
        // --ready wins over what the image is known to need.
        (
            "examples/unwired/dind-job.yaml",
            "dind-job-ready.yaml",
            opts(&["build"], &[("dind", "unix:/var/run/dind/docker.sock")]),
        ),
        (
            "examples/unwired/demo-pod.yaml",
            "demo-pod.yaml",
            opts(&["job"], &[]),
        ),
        (
            "examples/unwired/cronjob-cloud-sql-proxy.yaml",
            "cronjob-cloud-sql-proxy.yaml",
            opts(&["refresh"], &[]),
        ),
        (
            "kubectl-supervise/tests/golden/in/mixed.yaml",
            "mixed.yaml",
            opts(&[], &[]),
        ),
        (
            "kubectl-supervise/tests/golden/in/buildkite.yml",
            "buildkite.yml",
            opts(&[], &[]),
        ),
    ]
}

#[test]
fn golden_outputs() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (input, golden, o) in cases() {
        let out = inject::inject_str(&read(input), &o).unwrap_or_else(|e| panic!("{input}: {e}"));
        let path = repo("kubectl-supervise/tests/golden").join(golden);
        if update {
            std::fs::write(&path, &out).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if out != want {
            stale.push(format!("{golden} (from {input}):\n{out}"));
        }
    }
    assert!(
        stale.is_empty(),
        "outputs differ from tests/golden (UPDATE_GOLDEN=1 to accept):\n{}",
        stale.join("\n")
    );
}

#[test]
fn output_is_idempotent_strict_and_check_clean() {
    for (input, golden, o) in cases() {
        let once = inject::inject_str(&read(input), &o).expect("inject");
        let twice = inject::inject_str(&once, &o).expect("inject again");
        assert_eq!(once, twice, "{golden}: injecting twice changed it");
        // Without the options too: the wiring itself says who is main.
        let bare = inject::inject_str(&once, &Options::default()).expect("inject bare");
        assert_eq!(
            once, bare,
            "{golden}: re-injecting without options changed it"
        );
        let findings: Vec<String> = check::check_str(&once)
            .expect("yaml")
            .iter()
            .map(ToString::to_string)
            .collect();
        // check parses with the binary's own parser: the `docker:` targets validate too.
        assert!(findings.is_empty(), "{golden}: {findings:#?}\n{once}");
        for doc in yaml::parse(&once).expect("yaml") {
            manifest::strict_object(&doc).unwrap_or_else(|e| panic!("{golden}: {e}"));
            for loc in manifest::locate(&doc) {
                let view = manifest::view(&doc, &loc).expect("view");
                assert_eq!(view.unknown_field, None, "{golden}");
            }
        }
    }
}

#[test]
fn fields_inject_does_not_own_survive() {
    let input = read("examples/unwired/dind-job.yaml");
    let (_, _, o) = cases().remove(0);
    let out = inject::inject_str(&input, &o).expect("inject");
    let before = yaml::parse(&input).expect("yaml")[0].to_json();
    let after = yaml::parse(&out).expect("yaml")[0].to_json();
    // Everything but the pod spec is identical.
    for key in ["apiVersion", "kind", "metadata"] {
        assert_eq!(before[key], after[key], "{key}");
    }
    let spec = |v: &serde_json::Value| v["spec"]["template"]["spec"].clone();
    let (b, a) = (spec(&before), spec(&after));
    for (i, c) in b["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .enumerate()
    {
        let ac = &a["containers"][i];
        for (k, v) in c.as_object().expect("container") {
            if k != "volumeMounts" && k != "command" {
                assert_eq!(v, &ac[k], "container {i} field {k}");
            }
        }
        // The original command follows `--`.
        let cmd: Vec<String> =
            serde_json::from_value(ac["command"].clone()).expect("command strings");
        let rest = &cmd[cmd.iter().position(|w| w == "--").expect("--") + 1..];
        match c.get("command") {
            Some(orig) => assert_eq!(serde_json::to_value(rest).expect("json"), *orig),
            None => assert_eq!(rest, ["dockerd-entrypoint.sh"]),
        }
    }
    let typed: PodSpec = serde_json::from_value(a).expect("pod spec");
    assert_eq!(
        typed.init_containers.expect("init")[0].name,
        "install-supervisor"
    );
}

#[test]
fn scalars_keep_their_kubernetes_meaning() {
    // `no` and `on` unquoted are booleans to the API server; quoted they are strings. Both
    // must come out the way they went in.
    let input = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    a: \"no\"\n    b: 'on'\nspec:\n  containers:\n    - name: c\n      image: busybox\n      command: [sh, -c, 'echo \"$X\"']\n      env:\n        - {name: X, value: \"0755\"}\n      tty: yes\n";
    let out = inject::inject_str(input, &Options::default()).expect("inject");
    assert!(out.contains("    a: \"no\"\n    b: 'on'\n"), "{out}");
    assert!(out.contains("      tty: yes\n"), "{out}");
    assert!(out.contains("value: \"0755\""), "{out}");
    let v = yaml::parse(&out).expect("yaml")[0].to_json();
    assert_eq!(v["spec"]["containers"][0]["tty"], true);
    assert_eq!(v["spec"]["containers"][0]["env"][0]["value"], "0755");
}

fn err(input: &str, o: &Options) -> String {
    match inject::inject_str(input, o) {
        Ok(out) => panic!("expected an error, got:\n{out}"),
        Err(e) => {
            let s = e.to_string();
            assert!(!s.contains('\n'), "not one line: {s}");
            s
        }
    }
}

#[test]
fn refusals_name_the_problem() {
    let two = read("examples/unwired/demo-pod.yaml");
    let e = err(&two, &Options::default());
    assert!(
        e.contains("2 containers (job, redis)") && e.contains("--main"),
        "{e}"
    );
    let e = err(&two, &opts(&["jbo"], &[]));
    assert!(
        e.contains("no container named jbo (containers: job, redis)"),
        "{e}"
    );
    let e = err(&two, &opts(&["job"], &[("job", "tcp://127.0.0.1:1")]));
    assert!(e.contains("job is a main container"), "{e}");
    let e = err(&two, &opts(&["job"], &[("nope", "tcp://127.0.0.1:1")]));
    assert!(e.contains("no pod has a container named \"nope\""), "{e}");
    let unknown = two.replace("command: [redis-server]", "image: example.org/kv:1");
    let unknown = unknown.replace(
        "image: redis:7-alpine\n      image: example.org/kv:1",
        "image: example.org/kv:1",
    );
    let e = err(&unknown, &opts(&["job"], &[]));
    assert!(
        e.contains("container redis has no command") && e.contains("--entrypoint redis="),
        "{e}"
    );
    let mut with_entry = opts(&["job"], &[]);
    with_entry.entrypoints = vec![("redis".into(), vec!["/kv".into()])];
    let out = inject::inject_str(&unknown, &with_entry).expect("entrypoint given");
    assert!(out.contains("- --\n        - /kv\n      args:"), "{out}");
    let e = err("a: [\n", &Options::default());
    assert!(e.starts_with("invalid YAML"), "{e}");
    assert!(matches!(
        inject::inject_str("a: [", &Options::default()),
        Err(InjectError::Yaml(_))
    ));
}

#[test]
fn annotations_say_what_options_say() {
    let input = read("examples/unwired/demo-pod.yaml").replacen(
        "  name: supervisor-demo\n",
        "  name: supervisor-demo\n  annotations:\n    supervisor/main: job\n    supervisor/ready: redis=tcp://127.0.0.1:6379\n",
        1,
    );
    let by_annotation = inject::inject_str(&input, &Options::default()).expect("inject");
    let by_option = inject::inject_str(
        &input,
        &opts(&["job"], &[("redis", "tcp://127.0.0.1:6379")]),
    )
    .expect("inject");
    assert_eq!(by_annotation, by_option);
    assert!(by_annotation.contains("--ready-file=/supervisor/redis.ready"));
    let off = input.replacen(
        "    supervisor/main: job\n",
        "    supervisor/inject: \"false\"\n",
        1,
    );
    let out = inject::inject_str(&off, &Options::default()).expect("opted out");
    assert!(!out.contains("supervisor/bin"), "{out}");
    let bad = input.replacen("ready: redis=tcp", "ready: redis=ftp", 1);
    let e = err(&bad, &Options::default());
    assert!(e.contains("annotation supervisor/ready"), "{e}");
}

#[test]
fn death_travels_both_ways_unless_turned_off() {
    let input = read("examples/unwired/demo-pod.yaml");
    let wired = inject::inject_str(
        &input,
        &opts(&["job"], &[("redis", "tcp://127.0.0.1:6379")]),
    )
    .expect("inject");
    assert!(
        wired.contains("- --done-file=/supervisor/redis.done\n"),
        "{wired}"
    );
    assert!(
        wired.contains("- --requires=/supervisor/redis.done\n"),
        "{wired}"
    );
    let mut off = opts(&["job"], &[("redis", "tcp://127.0.0.1:6379")]);
    off.requires = Some(false);
    let one_way = inject::inject_str(&input, &off).expect("inject");
    assert!(!one_way.contains("redis.done"), "{one_way}");
    // The redis container then writes only its ready file; without its readiness, nothing.
    let mut bare = opts(&["job"], &[]);
    bare.requires = Some(false);
    bare.auto_ready = Some(false);
    let out = inject::inject_str(&input, &bare).expect("inject");
    let redis = &out[out.find("- name: redis").expect("redis")..];
    assert!(redis.contains("readOnly: true"), "{out}");
    // The annotation says the same.
    let annotated = input.replacen(
        "  name: supervisor-demo\n",
        "  name: supervisor-demo\n  annotations:\n    supervisor/requires: \"false\"\n",
        1,
    );
    let by_annotation = inject::inject_str(
        &annotated,
        &opts(&["job"], &[("redis", "tcp://127.0.0.1:6379")]),
    )
    .expect("inject");
    assert!(!by_annotation.contains("redis.done"), "{by_annotation}");
    let bad = annotated.replacen("requires: \"false\"", "requires: \"nope\"", 1);
    let e = err(&bad, &opts(&["job"], &[]));
    assert!(
        e.contains("annotation supervisor/requires: \"nope\" is not true or false"),
        "{e}"
    );
    // A main wired already is left alone, so its sidecars get no marker it would not read.
    let main_wired = wired.replacen("        - --requires=/supervisor/redis.done\n", "", 1);
    let main_wired = main_wired.replacen("        - --done-file=/supervisor/redis.done\n", "", 1);
    let unwired_sidecar = {
        let docs = yaml::parse(&main_wired).expect("yaml");
        let mut pod = docs[0].to_json();
        let redis = &mut pod["spec"]["containers"][1];
        redis["command"] = serde_json::json!(["redis-server"]);
        serde_json::to_string(&pod).expect("json")
    };
    let out = inject::inject_str(&unwired_sidecar, &opts(&["job"], &[])).expect("inject");
    assert!(out.contains("--wait-file=/supervisor/job.done"), "{out}");
    assert!(!out.contains("redis.done"), "{out}");
}

#[test]
fn other_documents_pass_through() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: |\n    line\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: 80\n";
    assert_eq!(
        inject::inject_str(text, &Options::default()).expect("inject"),
        text
    );
}

#[test]
fn json_objects_get_the_same_wiring() {
    // What the admission webhook calls: a Pod as JSON, options from its annotations.
    let text = read("examples/unwired/demo-pod.yaml").replacen(
        "  name: supervisor-demo\n",
        "  name: supervisor-demo\n  annotations:\n    supervisor/main: job\n    supervisor/ready: redis=tcp://127.0.0.1:6379\n",
        1,
    );
    let pod = yaml::parse(&text).expect("yaml")[0].to_json();
    let wired = inject::inject_json(&pod, &Options::default())
        .expect("inject")
        .expect("changed");
    let via_text = inject::inject_str(&text, &Options::default()).expect("inject");
    assert_eq!(wired, yaml::parse(&via_text).expect("yaml")[0].to_json());
    assert_eq!(
        inject::inject_json(&wired, &Options::default()).expect("again"),
        None,
        "already wired: no change"
    );
}

#[test]
fn buildkite_steps_follow_the_rules_of_pods() {
    // One planner: what it refuses for a pod, it refuses for a Buildkite step.
    let step = read("kubectl-supervise/tests/golden/in/buildkite.yml");
    let e = err(&step, &opts(&[], &[("build", "tcp://127.0.0.1:1")]));
    assert!(
        e.contains("build is a main container, not a sidecar"),
        "{e}"
    );
    let dind = ("dind", "unix:/var/run/dind/docker.sock");
    let wired = inject::inject_str(&step, &opts(&[], &[dind])).expect("inject");
    let no_ready_file = wired.replacen(
        "                - --ready-file=/supervisor/dind.ready\n",
        "",
        1,
    );
    let e = err(&no_ready_file, &opts(&[], &[dind]));
    assert!(
        e.contains("container dind already runs `supervisor sidecar` without --ready-file"),
        "{e}"
    );
    // The same grace rule: five sixths of a short termination grace period, main and sidecar.
    let short = step.replacen(
        "          podSpec:\n",
        "          podSpec:\n            terminationGracePeriodSeconds: 6\n",
        1,
    );
    let out = inject::inject_str(&short, &opts(&[], &[dind])).expect("inject");
    assert_eq!(out.matches("--grace=5s").count(), 2, "{out}");
}

#[test]
fn known_sidecars_are_waited_for_unless_turned_off() {
    let demo = read("examples/unwired/demo-pod.yaml");
    // Redis's readiness without --ready, and a bounded wait.
    let out = inject::inject_str(&demo, &opts(&["job"], &[])).expect("inject");
    assert!(
        out.contains("- --ready-when=tcp://127.0.0.1:6379\n"),
        "{out}"
    );
    assert!(
        out.contains("- --wait-for=file:/supervisor/redis.ready\n"),
        "{out}"
    );
    assert!(out.contains("- --wait-timeout=5m\n"), "{out}");
    // --ready wins; --wait-timeout too.
    let mut told = opts(&["job"], &[("redis", "tcp://127.0.0.1:7777")]);
    told.wait_timeout = Some("40s".into());
    let out = inject::inject_str(&demo, &told).expect("inject");
    assert!(
        out.contains("- --ready-when=tcp://127.0.0.1:7777\n"),
        "{out}"
    );
    assert!(out.contains("- --wait-timeout=40s\n"), "{out}");
    // The opt-out, as an option and as an annotation.
    let mut off = opts(&["job"], &[]);
    off.auto_ready = Some(false);
    let out = inject::inject_str(&demo, &off).expect("inject");
    assert!(
        !out.contains("--ready-when") && !out.contains("--wait-for"),
        "{out}"
    );
    let annotated = demo.replacen(
        "  name: supervisor-demo\n",
        "  name: supervisor-demo\n  annotations:\n    supervisor/auto-ready: \"false\"\n",
        1,
    );
    let by_annotation = inject::inject_str(&annotated, &opts(&["job"], &[])).expect("inject");
    assert!(!by_annotation.contains("--ready-when"), "{by_annotation}");
    let timed = demo.replacen(
        "  name: supervisor-demo\n",
        "  name: supervisor-demo\n  annotations:\n    supervisor/wait-timeout: 90s\n",
        1,
    );
    let out = inject::inject_str(&timed, &opts(&["job"], &[])).expect("inject");
    assert!(out.contains("- --wait-timeout=90s\n"), "{out}");
    let e = err(&timed.replacen("90s", "soon", 1), &opts(&["job"], &[]));
    assert!(e.contains("annotation supervisor/wait-timeout"), "{e}");
    // A database is known by its image, whatever command starts it.
    let shell = demo.replacen(
        "command: [redis-server]",
        "command: [sh, -c, 'exec redis-server']",
        1,
    );
    let out = inject::inject_str(&shell, &opts(&["job"], &[])).expect("inject");
    assert!(out.contains("--ready-when=tcp://127.0.0.1:6379"), "{out}");
}

#[test]
fn native_sidecars_as_written_are_wired_in_place() {
    let input = read("examples/unwired/dind-job-native.yaml");
    let out = inject::inject_str(&input, &opts(&["build"], &[])).expect("inject");
    let doc = yaml::parse(&out).expect("yaml")[0].to_json();
    let spec = &doc["spec"]["template"]["spec"];
    let init: Vec<&str> = spec["initContainers"]
        .as_array()
        .expect("init containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(init, ["install-supervisor", "dind"]);
    let dind = &spec["initContainers"][1];
    assert_eq!(dind["restartPolicy"], "Always");
    assert_eq!(
        dind["startupProbe"]["exec"]["command"][2],
        "docker:unix:///var/run/dind/docker.sock"
    );
    let cmd: Vec<String> = serde_json::from_value(dind["command"].clone()).expect("command");
    assert!(!cmd.iter().any(|w| w.starts_with("--wait-file")), "{cmd:?}");
    let build: Vec<String> =
        serde_json::from_value(spec["containers"][0]["command"].clone()).expect("command");
    assert!(build.contains(&"--wait-for=file:/supervisor/dind.ready".to_string()));
    // A native sidecar is never a main: with one app container, that is the main.
    let bare = inject::inject_str(&input, &Options::default()).expect("inject");
    assert_eq!(bare, out);
    // And `--main dind` names a sidecar.
    let e = err(&input, &opts(&["dind"], &[]));
    assert!(
        e.contains("dind is a native sidecar (an init container with restartPolicy: Always)"),
        "{e}"
    );
}

#[test]
fn json_objects_are_bounded_before_they_are_copied() {
    // What the webhook hands over: refused with one line, as any bad pod.
    let env: Vec<serde_json::Value> = (0..70_000)
        .map(|i| serde_json::json!({"name": format!("V{i}"), "value": "x"}))
        .collect();
    let wide = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "busybox", "command": ["true"], "env": env}]}
    });
    let e = inject::inject_json(&wide, &Options::default()).expect_err("too many values");
    assert!(e.to_string().contains("more than 131072 values"), "{e}");
    let mut deep = serde_json::json!("x");
    for _ in 0..101 {
        deep = serde_json::json!([deep]);
    }
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"x": deep}}});
    let e = inject::inject_json(&pod, &Options::default()).expect_err("too deep");
    assert!(
        e.to_string().contains("nests deeper than 100 levels"),
        "{e}"
    );
}

#[test]
fn main_names_the_containers_of_the_pods_that_have_them() {
    // As the docs say: --main picks the mains where it names a container; a pod with one
    // container, where it names none, is its own main.
    let list = r#"apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      restartPolicy: Never
      containers:
        - {name: a, image: busybox, command: ["true"]}
        - {name: b, image: redis:7}
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: j}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - {name: c, image: busybox, command: ["true"]}
"#;
    let out = inject::inject_str(list, &opts(&["a"], &[])).expect("inject");
    let docs = yaml::parse(&out).expect("yaml")[0].to_json();
    let command = |item: &serde_json::Value| -> Vec<String> {
        serde_json::from_value(item["command"].clone()).expect("command")
    };
    let pod = &docs["items"][0]["spec"]["containers"];
    assert_eq!(command(&pod[0])[1], "main");
    assert_eq!(command(&pod[1])[1], "sidecar");
    let job = &docs["items"][1]["spec"]["template"]["spec"]["containers"];
    assert_eq!(command(&job[0])[1], "main");
    // A pod of two where --main names neither still cannot be guessed.
    let two = list.replacen(
        "            - {name: c, image: busybox, command: [\"true\"]}\n",
        "            - {name: c, image: busybox, command: [\"true\"]}\n            - {name: d, image: redis:7}\n",
        1,
    );
    let e = err(&two, &opts(&["a"], &[]));
    assert!(
        e.contains("Job/j: no container named a (containers: c, d)"),
        "{e}"
    );
}

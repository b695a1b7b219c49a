//! Every rule of `check` fires on a good manifest broken on purpose, and only where expected.
//!
//! The good manifests are the repository's examples/ (clean, as tests/it/examples.rs shows);
//! each case edits one in a single place and names the rule that must report it.

// Test helpers may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubectl_supervise::check::{self, Finding, RULES};
use kubectl_supervise::{inject, yaml};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn example(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
}

fn findings(text: &str) -> Vec<Finding> {
    check::check_str(text).expect("valid YAML")
}

/// One breakage: in `file`, replace `from` with `to`; `rule` must then report `needle`.
struct Case {
    rule: &'static str,
    file: &'static str,
    from: &'static str,
    to: &'static str,
    needle: &'static str,
}

const CASES: &[Case] = &[
    Case {
        rule: "unknown-field",
        file: "dind-job.yaml",
        from: "mountPath: /var/lib/docker",
        to: "mountpath: /var/lib/docker",
        needle: "mountpath",
    },
    Case {
        rule: "command-line",
        file: "cronjob-cloud-sql-proxy.yaml",
        from: "- --wait-timeout=2m",
        to: "- --done-fil=/x\n                - --wait-timeout=2m",
        needle: "--done-fil",
    },
    Case {
        rule: "command-line",
        file: "cronjob-cloud-sql-proxy.yaml",
        from: "--quit-url=http://127.0.0.1:15020",
        to: "--quit-url=http://10.0.0.7:15020",
        needle: "loopback",
    },
    Case {
        rule: "command-line",
        file: "demo-pod.yaml",
        from: "      env:\n        - name: DEMO_FAIL",
        to: "      env:\n        - name: SUPERVISOR_GRACE\n          value: soon\n        - name: DEMO_FAIL",
        needle: "(with SUPERVISOR_GRACE)",
    },
    Case {
        rule: "volume-undefined",
        file: "dind-job.yaml",
        from: "        - name: docker-graph\n          emptyDir: {}\n",
        to: "",
        needle: "\"docker-graph\"",
    },
    Case {
        rule: "job-restart-policy",
        file: "dind-job.yaml",
        from: "restartPolicy: Never",
        to: "restartPolicy: Always",
        needle: "not Always",
    },
    Case {
        rule: "binary-not-installed",
        file: "demo-pod.yaml",
        from: "\"install\", \"/shared/bin\"]",
        to: "\"install\", \"/shared/sbin\"]",
        needle: "no earlier init container",
    },
    Case {
        rule: "binary-not-installed",
        file: "dind-job-native-sidecar.yaml",
        from: "        - name: install-supervisor\n          image: ghcr.io/supervisor-dev/supervisor:0.2.0\n          command: [\"/usr/local/bin/supervisor\", \"install\", \"/supervisor/bin\"]\n          volumeMounts:\n            - name: supervisor\n              mountPath: /supervisor\n        - name: dind\n",
        to: "        - name: dind\n",
        needle: "no earlier init container",
    },
    Case {
        rule: "wrong-slot",
        file: "dind-job-native-sidecar.yaml",
        from: "          restartPolicy: Always\n",
        to: "",
        needle: "blocks the pod forever",
    },
    Case {
        rule: "wrong-slot",
        file: "pipeline-sidecar/fluent-bit-sidecar.json",
        from: "\"probe\", \"tcp://127.0.0.1:24224\"]",
        to: "\"main\", \"--\", \"true\"]",
        needle: "startupProbe should run `supervisor probe`",
    },
    Case {
        rule: "sidecar-never-stops",
        file: "dind-job.yaml",
        from: "            - --wait-file=/supervisor/main.done\n",
        to: "",
        needle: "never stopped",
    },
    Case {
        rule: "sidecar-never-stops",
        file: "dind-job-native-sidecar.yaml",
        from: "            - sidecar\n",
        to: "            - sidecar\n            - --wait-file=/supervisor/main.done\n",
        needle: "must not use --wait-file",
    },
    Case {
        rule: "not-shared",
        file: "demo-pod.yaml",
        from: "--ready-file=/shared/redis.ready",
        to: "--ready-file=/tmp/redis.ready",
        needle: "is on no volume",
    },
    Case {
        rule: "volume-outlives-pod",
        file: "dind-job.yaml",
        from: "        - name: supervisor\n          emptyDir: {}\n",
        to: "        - name: supervisor\n          hostPath:\n            path: /var/lib/ci\n",
        needle: "volume \"supervisor\" is a hostPath",
    },
    Case {
        rule: "read-only-write",
        file: "dind-job.yaml",
        from: "            - name: supervisor\n              mountPath: /supervisor\n            - name: docker-sock\n              mountPath: /var/run/dind\n        - name: dind",
        to: "            - name: supervisor\n              mountPath: /supervisor\n              readOnly: true\n            - name: docker-sock\n              mountPath: /var/run/dind\n        - name: dind",
        needle: "mounted readOnly",
    },
    Case {
        rule: "writable-mount",
        file: "onfailure-job.yaml",
        from: "              mountPath: /supervisor\n              readOnly: true\n",
        to: "              mountPath: /supervisor\n",
        needle: "mount it readOnly",
    },
    Case {
        rule: "wait-file-unwritten",
        file: "dind-job.yaml",
        from: "--wait-file=/supervisor/main.done",
        to: "--wait-file=/supervisor/other.done",
        needle: "no `supervisor main --done-file` (nor another sidecar's) writes it",
    },
    Case {
        rule: "requires-unwritten",
        file: "dind-job.yaml",
        from: "            - --done-file=/supervisor/dind.done\n",
        to: "",
        needle: "give the sidecar --done-file=/supervisor/dind.done",
    },
    Case {
        rule: "done-file-unwaited",
        file: "dind-job.yaml",
        from: "--wait-file=/supervisor/main.done",
        to: "--wait-file=/supervisor/other.done",
        needle: "nothing watches it (--wait-file)",
    },
    Case {
        rule: "done-file-unwaited",
        file: "dind-job.yaml",
        from: "            - --requires=/supervisor/dind.done\n",
        to: "",
        needle: "writes /supervisor/dind.done, but nothing watches it (main --requires",
    },
    Case {
        rule: "ready-file-unwritten",
        file: "demo-pod.yaml",
        from: "--wait-for=file:/shared/redis.ready",
        to: "--wait-for=file:/shared/redis.up",
        needle: "the main never starts",
    },
    Case {
        rule: "on-failure-any",
        file: "onfailure-job.yaml",
        from: "            - --on=success\n",
        to: "",
        needle: "needs --on success",
    },
    Case {
        rule: "on-success-never",
        file: "demo-pod.yaml",
        from: "        - --wait-file=/shared/job.done\n",
        to: "        - --wait-file=/shared/job.done\n        - --on=success\n",
        needle: "never retried",
    },
    Case {
        rule: "grace-too-long",
        file: "dind-job.yaml",
        from: "terminationGracePeriodSeconds: 30",
        to: "terminationGracePeriodSeconds: 15",
        needle: "--grace 20.0s is not below terminationGracePeriodSeconds 15s",
    },
    Case {
        rule: "grace-too-long",
        file: "dind-job.yaml",
        from: "            - --grace=20s\n",
        to: "            - --grace=20s\n            - --stop-delay=10s\n",
        needle: "--stop-delay 10.0s plus --grace 20.0s (30.0s) is not below terminationGracePeriodSeconds 30s",
    },
    Case {
        rule: "unsupervised-container",
        file: "cronjob-cloud-sql-proxy.yaml",
        from: "                - --quit-url=http://127.0.0.1:9091/quitquitquit\n",
        to: "",
        needle: "the Job never completes",
    },
    Case {
        rule: "endpoint-disabled",
        file: "cronjob-cloud-sql-proxy.yaml",
        from: "                - --quitquitquit\n",
        to: "",
        needle: "needs the --quitquitquit argument",
    },
    Case {
        rule: "endpoint-disabled",
        file: "cronjob-cloud-sql-proxy.yaml",
        from: "                - --health-check\n",
        to: "",
        needle: "needs the --health-check argument",
    },
    Case {
        rule: "unwaited-sidecar",
        file: "dind-job.yaml",
        from: "            - --wait-for=file:/supervisor/dind.ready\n            # ...but give up after 2 minutes: exit 124, and the marker still stops dind.\n            - --wait-timeout=2m\n",
        to: "",
        needle: "container build: talks to dind (DOCKER_HOST unix:///var/run/dind/docker.sock) but does not wait for it, so it may start before dind is ready: add --wait-for=file:/supervisor/dind.ready",
    },
    Case {
        rule: "probe-target",
        file: "pipeline-sidecar/fluent-bit-sidecar.json",
        from: "\"probe\", \"tcp://127.0.0.1:24224\"]",
        to: "\"probe\", \"tcp://127.0.0.1:9999\"]",
        needle: "does not declare",
    },
    Case {
        rule: "probe-target",
        file: "pipeline-sidecar/fluent-bit-sidecar.json",
        from: "\"probe\", \"tcp://127.0.0.1:24224\"]",
        to: "\"probe\", \"tcp://fluent-bit.default:24224\"]",
        needle: "on 127.0.0.1",
    },
];

#[test]
fn every_rule_fires_on_a_broken_example() {
    let mut failures = Vec::new();
    let mut proven = BTreeSet::new();
    for case in CASES {
        let good = example(case.file);
        let before: Vec<String> = findings(&good).iter().map(ToString::to_string).collect();
        assert!(before.is_empty(), "{} is not clean: {before:#?}", case.file);
        assert!(
            good.contains(case.from),
            "{}: {:?} is not in the file",
            case.file,
            case.from
        );
        let bad = good.replacen(case.from, case.to, 1);
        let after = findings(&bad);
        let hit = after
            .iter()
            .any(|f| f.rule == case.rule && f.to_string().contains(case.needle));
        if hit {
            proven.insert(case.rule);
        } else {
            failures.push(format!(
                "{} broken ({:?} -> {:?}): expected [{}] with {:?}, got:\n    {}",
                case.file,
                case.from,
                case.to,
                case.rule,
                case.needle,
                after
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    proven.insert(native_sidecar_without_probe_fires());
    let all: BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
    let missing: Vec<&&str> = all.difference(&proven).collect();
    assert!(missing.is_empty(), "rules no test proves: {missing:?}");
}

/// The one rule whose good manifest is inject's own output: a native sidecar the mains wait
/// for, which loses its startupProbe.
fn native_sidecar_without_probe_fires() -> &'static str {
    let opts = inject::Options {
        mains: vec!["build".into()],
        ready: vec![("dind".into(), "unix:/var/run/dind/docker.sock".into())],
        native: Some(true),
        ..Default::default()
    };
    let wired = inject::inject_str(&example("unwired/dind-job.yaml"), &opts).expect("inject");
    assert_eq!(findings(&wired), vec![], "{wired}");
    let mut docs = yaml::parse(&wired).expect("yaml");
    let dind = docs[0]
        .at_mut(&["spec", "template", "spec", "initContainers"])
        .and_then(yaml::Node::as_seq_mut)
        .and_then(|l| l.get_mut(1))
        .expect("dind is the second init container");
    assert!(dind.remove("startupProbe").is_some(), "{wired}");
    let after = findings(&yaml::emit(&docs));
    assert!(
        after
            .iter()
            .any(|f| f.rule == "native-without-startup-probe"
                && f.container.as_deref() == Some("dind")),
        "{after:#?}"
    );
    "native-without-startup-probe"
}

#[test]
fn findings_name_the_object_the_container_and_the_rule() {
    let bad = example("onfailure-job.yaml").replacen("            - --on=success\n", "", 1);
    let lines: Vec<String> = findings(&bad).iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "Job/integration-tests: container redis: with restartPolicy OnFailure the sidecar needs --on success: the first failed attempt stops it, and the retry finds it gone [on-failure-any]"
        ]
    );
}

#[test]
fn docs_list_every_rule_and_every_known_image() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/kubectl-supervise.md"),
    )
    .expect("docs/kubectl-supervise.md");
    for r in RULES {
        assert!(
            doc.contains(&format!("| `{}` |", r.id)),
            "docs/kubectl-supervise.md does not list rule {}",
            r.id
        );
    }
    let rows: Vec<String> = kubectl_supervise::images::KNOWN_IMAGES
        .iter()
        .map(|k| {
            let ep = match k.entrypoint {
                Some(e) => format!("`{}`", serde_json::to_string(e).expect("json")),
                None => "varies: give `--entrypoint`".into(),
            };
            let cmd = serde_json::to_string(&k.cmd).expect("json");
            let env: Vec<String> = k.env.iter().map(|(a, b)| format!("`{a}={b}`")).collect();
            let ready = k.ready.map(|r| r.describe()).unwrap_or_default();
            let cells = [
                format!("`{}`", k.pattern),
                ep,
                format!("`{cmd}`"),
                env.join(", "),
                ready,
            ];
            let cells: Vec<String> = cells
                .iter()
                .map(|c| {
                    if c.is_empty() {
                        " ".into()
                    } else {
                        format!(" {c} ")
                    }
                })
                .collect();
            format!("|{}|", cells.join("|"))
        })
        .collect();
    assert!(
        doc.contains(&rows.join("\n")),
        "docs/kubectl-supervise.md's known-image table should read:\n{}",
        rows.join("\n")
    );
}

#[test]
fn entrypoints_annotation_shows_check_what_an_image_runs() {
    // An image of the user's own with `supervisor sidecar` baked in: check cannot know, until
    // the supervisor/entrypoints annotation (the one inject reads) says so.
    let dind = example("dind-job.yaml");
    // The dind container's image and command, as written, and its command's words.
    let start = dind
        .find("          image: docker:27-dind\n")
        .expect("the dind image");
    let end = start
        + dind[start..]
            .find("            - dockerd-entrypoint.sh\n")
            .expect("its command's end")
        + "            - dockerd-entrypoint.sh\n".len();
    let words: Vec<String> = yaml::parse(&dind).expect("yaml")[0]
        .at(&["spec", "template", "spec", "containers"])
        .map(yaml::Node::to_json)
        .and_then(|cs| {
            cs.as_array()?
                .iter()
                .find(|c| c["name"] == "dind")
                .map(|c| c["command"].clone())
        })
        .and_then(|c| serde_json::from_value(c).ok())
        .expect("dind's command");
    let baked = format!(
        "{}          image: example.org/dind-with-supervisor:1\n{}",
        &dind[..start],
        &dind[end..]
    );
    let rules: Vec<&str> = findings(&baked).iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"unsupervised-container"), "{rules:?}");
    let entrypoints = serde_json::json!({ "dind": words }).to_string();
    let annotated = baked.replacen(
        "  template:\n    spec:\n",
        &format!(
            "  template:\n    metadata:\n      annotations:\n        supervisor/entrypoints: '{entrypoints}'\n    spec:\n"
        ),
        1,
    );
    assert_eq!(findings(&annotated), vec![]);
    // And inject, reading the same annotation, sees it wired and changes nothing.
    let out = inject::inject_str(&annotated, &inject::Options::default()).expect("inject");
    assert_eq!(
        yaml::parse(&out).expect("yaml"),
        yaml::parse(&annotated).expect("yaml")
    );
}

#[test]
fn a_main_that_talks_to_a_sidecar_must_wait_for_it() {
    let rules = |text: &str| -> Vec<String> {
        findings(text)
            .iter()
            .filter(|f| f.rule == "unwaited-sidecar")
            .map(ToString::to_string)
            .collect()
    };
    // dind with TLS: the build reaches dockerd on its TLS port.
    let opts = inject::Options {
        mains: vec!["build".into()],
        ..Default::default()
    };
    let tls = inject::inject_str(&example("unwired/dind-job-tls.yaml"), &opts).expect("inject");
    assert_eq!(rules(&tls), Vec::<String>::new());
    let unwaited = tls.replacen(
        "            - --wait-for=file:/supervisor/dind.ready\n            - --wait-timeout=5m\n",
        "",
        1,
    );
    assert_ne!(unwaited, tls);
    let found = rules(&unwaited);
    assert!(
        found.len() == 1 && found[0].contains("talks to dind (DOCKER_HOST tcp://localhost:2376)"),
        "{found:#?}"
    );
    // Redis named on loopback in the main's arguments.
    let demo = example("demo-pod.yaml");
    let by_url = demo.replacen(
        "redis-cli -h 127.0.0.1 SET",
        "redis-cli -u redis://localhost:6379 SET",
        1,
    );
    assert_eq!(rules(&by_url), Vec::<String>::new());
    let unwaited = by_url.replacen(
        "        - --wait-for=file:/shared/redis.ready\n        - --wait-timeout=30s\n",
        "",
        1,
    );
    let found = rules(&unwaited);
    assert!(
        found.len() == 1 && found[0].contains("talks to redis (port 6379 in its arguments)"),
        "{found:#?}"
    );
    // A native sidecar with a startupProbe holds the mains back: that is waiting.
    let native = example("dind-job-native-sidecar.yaml");
    let no_wait = native.replacen(
        "            - --wait-for=unix:/var/run/dind/docker.sock\n            - --wait-timeout=2m\n",
        "",
        1,
    );
    assert_ne!(no_wait, native);
    assert_eq!(rules(&no_wait), Vec::<String>::new());
    // Without its startupProbe nothing holds the build back.
    let no_probe = no_wait.replacen("          startupProbe:\n", "          livenessProbe:\n", 1);
    let found = rules(&no_probe);
    assert!(
        found.len() == 1 && found[0].contains("talks to dind"),
        "{found:#?}"
    );
}

#[test]
fn a_command_line_that_does_not_parse_is_reported_alone() {
    // A typo in the main's marker option: the line would not start. Nothing else is said
    // about it, nor about the sidecar that waits for the marker it would have written.
    let bad = example("dind-job.yaml").replacen(
        "            - --done-file=/supervisor/main.done\n",
        "            - --done-fil=/supervisor/main.done\n",
        1,
    );
    let all: Vec<String> = findings(&bad).iter().map(ToString::to_string).collect();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].contains("container build:") && all[0].ends_with("[command-line]"),
        "{all:#?}"
    );
}

#[test]
fn a_supervisor_volume_that_outlives_the_pod_is_flagged() {
    let good = example("dind-job.yaml");
    for (to, kind) in [
        (
            "        - name: supervisor\n          hostPath:\n            path: /var/lib/ci\n",
            "hostPath",
        ),
        (
            "        - name: supervisor\n          persistentVolumeClaim:\n            claimName: ci\n",
            "persistentVolumeClaim",
        ),
    ] {
        let bad = good.replacen(
            "        - name: supervisor\n          emptyDir: {}\n",
            to,
            1,
        );
        assert_ne!(bad, good);
        let found: Vec<String> = findings(&bad)
            .iter()
            .filter(|f| f.rule == "volume-outlives-pod")
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 1, "one finding for the volume: {found:#?}");
        assert!(
            found[0].contains(&format!("volume \"supervisor\" is a {kind}")),
            "{found:#?}"
        );
    }
    // A generic ephemeral volume ends with the pod, as an emptyDir does.
    let ephemeral = good.replacen(
        "        - name: supervisor\n          emptyDir: {}\n",
        "        - name: supervisor\n          ephemeral:\n            volumeClaimTemplate:\n              spec:\n                accessModes: [ReadWriteOnce]\n                resources: {requests: {storage: 1Gi}}\n",
        1,
    );
    assert_eq!(findings(&ephemeral), vec![]);
}

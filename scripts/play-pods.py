#!/usr/bin/env python3
"""Turns an example manifest into the pods `podman kube play` runs here: scripts/play.sh's helper.

    play-pods.py --out DIR --id ID --prefix PREFIX [--standin IMAGE-PREFIX=LOCAL]... [--fail]
                 [--as NAME] FILE

Theory of operation. A file is read as Kubernetes YAML (any number of documents, `kind: List`
included), as a Buildkite pipeline (a document with `steps`), or as a lone container spec in
JSON. Every pod in it is found: a Pod, the template of a Job or of a CronJob's job, the pod
agent-stack-k8s (v0.35+) builds for a Buildkite step with the `kubernetes` plugin, and for a
container spec the pod a platform would put it in (the binary installed on a `supervisor`
emptyDir, an app container that writes the marker). Each pod is then rewritten for the local,
offline podman, the way tests/it/containers.rs does it: images mapped to the local stand-ins of
scripts/podman-env.sh (the --standin pairs), the pod and its volumes given names unique to this
run, native sidecars (init containers with `restartPolicy: Always`) made ordinary containers
(play.sh stops them with SIGTERM once the others are done, as the kubelet does), probes and
ports taken out (play.sh runs exec probes itself; podman would turn ports into host mappings,
which a pod without network cannot have), `restartPolicy` Never for podman (Always would never
end; under OnFailure play.sh restarts failed containers itself, to see every attempt's exit).
ConfigMap volumes are served from ConfigMaps found in the file or beside it.

For pod N it writes DIR/pod-N.yaml (for `podman kube play`), DIR/pod-N.sh (bash assignments
that play.sh sources: names, roles, probes, notes) and, when the pod mounts ConfigMaps,
DIR/configmap-N-M.yaml. Bad input is one line on stderr and exit 2; nothing is written then.
"""

import argparse
import copy
import json
import os
import re
import shlex
import sys

import yaml

WORKLOADS_NOT_PLAYED = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


class Unplayable(Exception):
    """The file cannot be played; the message says why, in one line."""


def load_documents(path):
    if not path.endswith((".yaml", ".yml", ".json")):
        raise Unplayable("not a manifest: play.sh reads .yaml, .yml and .json files")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise Unplayable(f"not UTF-8 text ({e.reason} at byte {e.start})") from e
    try:
        # JSON is YAML too, but its own parser says what is wrong in JSON's terms.
        docs = [json.loads(text)] if path.endswith(".json") else list(yaml.safe_load_all(text))
    except json.JSONDecodeError as e:
        raise Unplayable(f"not JSON: {e}") from e
    except yaml.YAMLError as e:
        raise Unplayable(f"not YAML: {' '.join(str(e).split())}") from e
    flat = []
    for d in docs:
        # A List's items are documents in their own right (kubectl get -o yaml writes them).
        if isinstance(d, dict) and d.get("kind") == "List":
            flat.extend(i for i in d.get("items") or [] if isinstance(i, dict))
        elif d is not None:
            flat.append(d)
    return flat


def is_container_spec(doc):
    return isinstance(doc, dict) and "kind" not in doc and "name" in doc and "image" in doc


# --- Finding the pods --------------------------------------------------------------------------


class Source:
    """A pod spec found in the file, with what it came from."""

    def __init__(self, what, spec, backoff_limit=None, wrapped=False):
        self.what = what
        self.spec = spec
        self.backoff_limit = backoff_limit
        self.wrapped = wrapped


def kube_pods(doc, skipped):
    kind = doc.get("kind")
    name = (doc.get("metadata") or {}).get("name") or "pod"
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return [Source(f"Pod {name}", spec)]
    if kind == "Job":
        return [Source(f"Job {name}", (spec.get("template") or {}).get("spec") or {},
                       spec.get("backoffLimit", 6))]
    if kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        return [Source(f"CronJob {name} (one run of its job)",
                       (job.get("template") or {}).get("spec") or {}, job.get("backoffLimit", 6))]
    if kind in WORKLOADS_NOT_PLAYED:
        skipped.append(f"{kind} {name} (its pods are meant to run forever)")
    else:
        skipped.append(f"{kind} {name}")
    return []


def buildkite_steps(steps):
    for step in steps or []:
        if isinstance(step, dict):
            yield step
            # A group step holds steps of its own.
            yield from buildkite_steps(step.get("steps") if "group" in step else None)


def buildkite_pods(doc):
    """The pod agent-stack-k8s (v0.35+) builds for each step with a `kubernetes` plugin: the
    podSpec's containers run the step's command lines in a shell (`$$` is pipeline
    interpolation's escaped `$`), `sidecars` become native sidecars, /workspace is an emptyDir
    mounted everywhere. The stack's own agent and checkout containers are left out: they do not
    touch supervisor."""
    pods = []
    for i, step in enumerate(buildkite_steps(doc.get("steps"))):
        for plugin in step.get("plugins") or []:
            k8s = plugin.get("kubernetes") if isinstance(plugin, dict) else None
            if not isinstance(k8s, dict):
                continue
            spec = copy.deepcopy(k8s.get("podSpec") or {})
            for c in spec.get("containers") or []:
                lines = c.pop("command", None) or []
                c.pop("args", None)
                c["command"] = ["sh", "-ec", "\n".join(lines).replace("$$", "$")]
            init = spec.setdefault("initContainers", [])
            for s in copy.deepcopy(k8s.get("sidecars") or []):
                s["restartPolicy"] = "Always"
                init.append(s)
            for c in spec.get("containers", []) + init:
                c.setdefault("volumeMounts", []).append({"name": "workspace", "mountPath": "/workspace"})
            spec.setdefault("volumes", []).append({"name": "workspace", "emptyDir": {}})
            spec["restartPolicy"] = "Never"
            label = step.get("label") or step.get("key") or f"step {i}"
            pods.append(Source(f"Buildkite step {label!r} (the pod agent-stack-k8s builds)", spec))
    return pods


def container_spec_pod(doc):
    """The pod a platform gives a lone sidecar spec: the binary installed on the `supervisor`
    emptyDir and an app container whose supervisor writes the marker the sidecar waits for. The
    app waits for the sidecar's ready file, then for play.sh to release it once every exec probe
    has passed (so the timeline shows them)."""
    mounts = {m.get("name") for m in doc.get("volumeMounts") or []}
    volumes = [{"name": "supervisor", "emptyDir": {}}]
    volumes += [{"name": v, "configMap": {"name": v}} for v in sorted(mounts - {"supervisor"})]
    ready = next((a.split("=", 1)[1] for a in doc.get("command") or []
                  if a.startswith("--ready-file=")), None)
    wait = [f"--wait-for=file:{ready}", "--wait-timeout=60s"] if ready else []
    script = "until [ -e /tmp/play.released ]; do sleep 0.1; done\necho 'app: done'"
    spec = {
        "restartPolicy": "Never",
        "initContainers": [{
            "name": "install-supervisor",
            "image": "ghcr.io/supervisor-dev/supervisor:0.2.0",
            "command": ["/usr/local/bin/supervisor", "install", "/supervisor/bin"],
            "volumeMounts": [{"name": "supervisor", "mountPath": "/supervisor"}],
        }],
        "containers": [{
            "name": "app",
            "image": "busybox:1.36",
            "command": ["/supervisor/bin/supervisor", "main", "--done-file=/supervisor/main.done",
                        *wait, "--", "sh", "-c", script],
            "volumeMounts": [{"name": "supervisor", "mountPath": "/supervisor"}],
        }, copy.deepcopy(doc)],
        "volumes": volumes,
    }
    return Source(f"container spec {doc['name']} (in the pod a platform gives it: an install init "
                  "container and an app container)", spec, wrapped=True)


def find_pods(docs):
    skipped, pods, configmaps = [], [], []
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if is_container_spec(doc):
            pods.append(container_spec_pod(doc))
        elif "steps" in doc and "kind" not in doc:
            pods.extend(buildkite_pods(doc))
        elif doc.get("kind") == "ConfigMap":
            configmaps.append(doc)
            skipped.append(f"ConfigMap {(doc.get('metadata') or {}).get('name')}")
        elif "kind" in doc:
            pods.extend(kube_pods(doc, skipped))
    if not pods:
        hint = "; a ConfigMap is played with the pod that mounts it" if configmaps else ""
        found = f" (found: {', '.join(skipped)}{hint})" if skipped else ""
        raise Unplayable("nothing to play: no Pod, Job, CronJob, Buildkite step with the kubernetes "
                         f"plugin, or container spec{found}")
    return pods, configmaps, skipped


def sibling_configmaps(path):
    """ConfigMaps in the YAML files beside PATH (a sidecar spec's config lives next to it)."""
    found = []
    folder = os.path.dirname(os.path.abspath(path))
    for f in sorted(os.listdir(folder)):
        full = os.path.join(folder, f)
        if full == os.path.abspath(path) or not f.endswith((".yaml", ".yml")):
            continue
        try:
            docs = load_documents(full)
        except (Unplayable, OSError):
            continue
        found.extend(d for d in docs if isinstance(d, dict) and d.get("kind") == "ConfigMap")
    return found


# --- Rewriting a pod for podman ----------------------------------------------------------------


def words_of(container):
    """The container's argv, with shell scripts split into words too (a `supervisor main` may sit
    inside `sh -c '...'`, as in the Buildkite step)."""
    out = []
    for w in (container.get("command") or []) + (container.get("args") or []):
        out.append(w)
        if any(ch.isspace() for ch in w):
            try:
                out.extend(shlex.split(w, comments=True))
            except ValueError:
                pass
    return out


def supervisor_mode(container):
    words = words_of(container)
    for i, w in enumerate(words[:-1]):
        if (w == "supervisor" or w.endswith("/supervisor")) and words[i + 1] in ("main", "sidecar"):
            return words[i + 1]
    return None


FAILING = "echo \"{name}: failing on purpose (play.sh --fail)\"; exit 3"


def make_fail(container):
    """Replaces the command `supervisor main ... --` runs by one that exits 3, in argv form or
    inside a `sh -c` script. False when the container has no such command."""
    argv = container.get("command") or []
    failing = ["sh", "-c", FAILING.format(name=container["name"])]
    for i, w in enumerate(argv):
        if (w == "supervisor" or w.endswith("/supervisor")) and argv[i + 1:i + 2] == ["main"] and "--" in argv[i:]:
            container["command"] = argv[:argv.index("--", i) + 1] + failing
            container.pop("args", None)
            return True
    for i, w in enumerate(argv):
        try:
            words = shlex.split(w) if any(ch.isspace() for ch in w) else []
        except ValueError:
            continue
        if len(words) > 2 and words[0].endswith("supervisor") and words[1] == "main" and "--" in words:
            argv[i] = shlex.join(words[:words.index("--") + 1] + failing)
            return True
    return False


def local_image(image, standins, prefix):
    for pattern, local in standins:
        if image.startswith(pattern):
            return f"{prefix}/{local}"
    known = ", ".join(p for p, _ in standins)
    raise Unplayable(f"no local stand-in for image {image!r} (there is no registry here; "
                     f"play.sh knows {known})")


def dns_name(s):
    return re.sub(r"[^a-z0-9-]", "-", s.lower()).strip("-") or "pod"


def rename_volumes(spec, run_id, configmaps):
    """Gives each volume a per-run name; returns {old: new} and the ConfigMaps to mount."""
    renamed, mounted = {}, []
    for v in spec.get("volumes") or []:
        new = f"{v['name']}-{run_id}"
        if "configMap" in v:
            wanted = (v["configMap"] or {}).get("name")
            cm = next((c for c in configmaps if (c.get("metadata") or {}).get("name") == wanted), None)
            if cm is None:
                raise Unplayable(f"volume {v['name']!r} mounts ConfigMap {wanted!r}, which is neither "
                                 "in the file nor in a YAML file beside it")
            # podman makes a named volume of each ConfigMap: a per-run name keeps runs apart.
            cm = copy.deepcopy(cm)
            cm["metadata"] = {"name": new}
            v["configMap"]["name"] = new
            mounted.append(cm)
        elif "emptyDir" not in v:
            kind = next((k for k in v if k != "name"), "?")
            raise Unplayable(f"volume {v['name']!r} is a {kind}: play.sh plays emptyDir and "
                             "configMap volumes only")
        renamed[v["name"]] = new
        v["name"] = new
    return renamed, mounted


def split_natives(spec, notes):
    """Moves native sidecars to the pod's containers, first (the kubelet starts them before the
    others); returns (init containers, native sidecars, containers)."""
    init, natives = [], []
    for c in spec.pop("initContainers", None) or []:
        (natives if c.pop("restartPolicy", None) == "Always" else init).append(c)
    containers = natives + (spec.get("containers") or [])
    spec["containers"] = containers
    if init:
        spec["initContainers"] = init
    for c in natives:
        notes.append(f"{c['name']} is a native sidecar: played as an ordinary container that "
                     "play.sh stops with SIGTERM once the others have exited, as the kubelet does")
    return init, natives, containers


def restart_policy(spec, backoff_limit, notes):
    """The pod's restartPolicy as play.sh plays it; podman gets Never either way, since play.sh
    does the restarting itself, so that it sees every attempt's exit."""
    restart = spec.get("restartPolicy") or "Always"
    if restart == "Always":
        restart = "Never"
        notes.append("restartPolicy Always would restart the containers forever: played as Never")
    elif restart == "OnFailure":
        limit = "" if backoff_limit is None else f", up to the Job's backoffLimit ({backoff_limit})"
        notes.append("restartPolicy OnFailure: play.sh restarts a failed container in place, as the "
                     f"kubelet does (without its back-off delay){limit}")
    spec["restartPolicy"] = "Never"
    return restart


def localize(containers, renamed, standins, prefix, notes):
    """Local images, renamed volume mounts, no probes (returned, as (container, kind, command),
    for play.sh to run) and no ports."""
    probes = []
    for c in containers:
        c["image"] = local_image(c.get("image") or "", standins, prefix)
        for m in c.get("volumeMounts") or []:
            m["name"] = renamed.get(m.get("name"), m.get("name"))
        for kind in ("startup", "readiness", "liveness"):
            probe = c.pop(f"{kind}Probe", None)
            cmd = ((probe or {}).get("exec") or {}).get("command")
            if cmd:
                probes.append((c["name"], kind, shlex.join(cmd)))
            elif probe:
                notes.append(f"{c['name']}'s {kind}Probe is not an exec probe: not run")
        c.pop("ports", None)
    return probes


def main_containers(containers, native_names, fail, notes):
    """The containers whose result is the pod's: those running `supervisor main`, else every
    one but the native sidecars. With --fail, their commands are made to exit 3."""
    others = [c for c in containers if c["name"] not in native_names]
    mains = [c for c in others if supervisor_mode(c) == "main"] or others
    if fail:
        failed = [c["name"] for c in mains if make_fail(c)]
        if not failed:
            raise Unplayable("--fail: no container runs `supervisor main ... -- COMMAND` whose "
                             "command could be made to fail")
        notes.append(f"--fail: the command of {', '.join(failed)} exits 3")
    return [c["name"] for c in mains]


def playable(src, stem, run_id, standins, prefix, configmaps, fail):
    """Rewrites one pod (see the module doc); returns (pod, meta, configmaps to mount)."""
    spec = copy.deepcopy(src.spec)
    notes = []
    # Named after the file, not the pod: the demo's test looks for containers named after
    # demo-pod.yaml's pod, and the tests and the demo share this podman.
    pod_name = f"play-{dns_name(stem)}-{run_id}"
    renamed, mounted_configmaps = rename_volumes(spec, run_id, configmaps)
    init, natives, containers = split_natives(spec, notes)
    restart = restart_policy(spec, src.backoff_limit, notes)
    probes = localize(init + containers, renamed, standins, prefix, notes)
    native_names = [c["name"] for c in natives]
    mains = main_containers(containers, native_names, fail, notes)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            # Keep init containers after they ran, so play.sh can show their logs and times.
            "annotations": {"io.podman.annotations.init.container.type": "always"},
        },
        "spec": spec,
    }
    meta = {
        "PLAY_WHAT": src.what,
        "PLAY_POD": pod_name,
        "PLAY_INITS": [c["name"] for c in init],
        "PLAY_CONTAINERS": [c["name"] for c in containers],
        "PLAY_MAINS": mains,
        "PLAY_NATIVES": native_names,
        "PLAY_IMAGES": sorted({c["image"].rsplit("/", 1)[1] for c in init + containers}),
        "PLAY_VOLUMES": [v["name"] for v in spec.get("volumes") or []],
        "PLAY_RESTART": restart,
        "PLAY_BACKOFF_LIMIT": "" if src.backoff_limit is None else str(src.backoff_limit),
        "PLAY_GRACE": str(spec.get("terminationGracePeriodSeconds", 30)),
        "PLAY_PROBE_CONTAINER": [p[0] for p in probes],
        "PLAY_PROBE_KIND": [p[1] for p in probes],
        "PLAY_PROBE_CMD": [p[2] for p in probes],
        "PLAY_RELEASE": "app" if src.wrapped and not fail else "",
        "PLAY_NOTES": notes,
    }
    return pod, meta, mounted_configmaps


def bash_assignments(meta):
    lines = []
    for k, v in meta.items():
        if isinstance(v, list):
            lines.append(f"{k}=({' '.join(shlex.quote(x) for x in v)})")
        else:
            lines.append(f"{k}={shlex.quote(v)}")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--standin", action="append", default=[], metavar="IMAGE-PREFIX=LOCAL")
    p.add_argument("--fail", action="store_true")
    p.add_argument("--as", dest="shown", metavar="NAME", help="the file's name in messages and pod names")
    p.add_argument("file")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    standins = [tuple(s.split("=", 1)) for s in args.standin]
    shown = args.shown or args.file
    try:
        docs = load_documents(args.file)
        pods, configmaps, skipped = find_pods(docs)
        configmaps += sibling_configmaps(args.file)
        stem = os.path.splitext(os.path.basename(shown))[0]
        results = [playable(src, stem, f"{args.id}{i}" if len(pods) > 1 else args.id, standins,
                            args.prefix, configmaps, args.fail) for i, src in enumerate(pods)]
    except Unplayable as e:
        print(f"play: {shown}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"play: {shown}: {e.strerror}", file=sys.stderr)
        return 2
    for n, (pod, meta, cms) in enumerate(results):
        if skipped:
            meta["PLAY_NOTES"].append(f"not played (not a pod): {', '.join(skipped)}")
        cm_files = []
        for m, cm in enumerate(cms):
            cm_file = os.path.join(args.out, f"configmap-{n}-{m}.yaml")
            with open(cm_file, "w", encoding="utf-8") as f:
                yaml.safe_dump(cm, f, sort_keys=False)
            cm_files.append(cm_file)
        meta["PLAY_CONFIGMAPS"] = cm_files
        meta["PLAY_YAML"] = os.path.join(args.out, f"pod-{n}.yaml")
        with open(meta["PLAY_YAML"], "w", encoding="utf-8") as f:
            yaml.safe_dump(pod, f, sort_keys=False)
        with open(os.path.join(args.out, f"pod-{n}.sh"), "w", encoding="utf-8") as f:
            f.write(bash_assignments(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

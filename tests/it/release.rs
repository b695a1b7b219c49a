//! What `scripts/release.sh` writes, checked as a user and a platform team would check it:
//! checksums, static binaries of the right architecture that say what they are, SBOMs that
//! name what each binary is built from, a krew manifest krew would accept whose sums are the
//! tarballs', images that load and run, and the README's install paths run against them.
//!
//! Theory of operation. `.ci/run` runs `scripts/release.sh VERSION` for this commit and points
//! SV_RELEASE_DIR at its output; every test here reads that directory and nothing is
//! built. The release must be of this checkout's HEAD: a stale dist/ from another commit is a
//! failure naming both commits. Without SV_RELEASE_DIR the tests skip, and fail under
//! CI. The images are loaded into the container tests' private podman (containers.rs), under
//! its lock, and removed again.

use crate::containers::{self, Podman};
use crate::examples;
use crate::util::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (architecture as krew and OCI name it, Rust target, ELF e_machine).
const ARCHES: [(&str, &str, u16); 2] = [
    ("amd64", "x86_64-unknown-linux-musl", 62),
    ("arm64", "aarch64-unknown-linux-musl", 183),
];
const BINS: [&str; 2] = ["supervisor", "kubectl-supervise"];
const IMAGE_PREFIX: &str = "ghcr.io/supervisor-dev";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The release directory, for this checkout's commit.
struct Release {
    dir: PathBuf,
    commit: String,
    /// SOURCE_DATE_EPOCH: the commit's time.
    epoch: u64,
}

fn git(args: &[&str]) -> String {
    let mut c = Command::new("git");
    c.args(args).current_dir(examples::repo());
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    o.stdout.trim().to_string()
}

fn release() -> Option<Release> {
    let Some(dir) = std::env::var_os("SV_RELEASE_DIR").map(PathBuf::from) else {
        skip("SV_RELEASE_DIR is not set (scripts/release.sh VERSION, then point it at dist/)");
        return None;
    };
    assert!(dir.join("SHA256SUMS").is_file(), "{dir:?}: no SHA256SUMS");
    let r = Release {
        dir,
        commit: git(&["rev-parse", "HEAD"]),
        epoch: git(&["log", "-1", "--format=%ct", "HEAD"]).parse().unwrap(),
    };
    Some(r)
}

impl Release {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn tarball(&self, bin: &str, arch: &str) -> PathBuf {
        self.path(&format!("{bin}-{VERSION}-linux-{arch}.tar.gz"))
    }

    /// What `--version` of a binary built for `target` from this commit prints (without the
    /// newline: an [`Outcome`]'s stdout is its lines joined).
    fn version_line(&self, bin: &str, target: &str) -> String {
        format!("{bin} {VERSION} ({}, {target})", &self.commit[..12])
    }

    /// `bin` of the tarball for `arch`, extracted into `into`.
    fn extract(&self, bin: &str, arch: &str, into: &Path) -> PathBuf {
        let mut c = Command::new("tar");
        c.arg("-xzf")
            .arg(self.tarball(bin, arch))
            .arg("-C")
            .arg(into);
        let o = run(c);
        assert_eq!(o.code(), Some(0), "{o}");
        into.join(bin)
    }
}

/// The commit's time, formatted by date(1).
fn date(epoch: u64, format: &str) -> String {
    let mut c = Command::new("date");
    c.args(["-u", "-d", &format!("@{epoch}"), format]);
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    o.stdout.trim().to_string()
}

fn sha256(path: &Path) -> String {
    let mut c = Command::new("sha256sum");
    c.arg(path);
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    o.stdout.split_whitespace().next().unwrap().to_string()
}

/// The ELF header's e_machine.
fn machine(bytes: &[u8]) -> u16 {
    assert_eq!(bytes.get(..4), Some(&b"\x7fELF"[..]), "not an ELF file");
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// `qemu-aarch64-static` (tests/it/aarch64.rs runs the arm64 build's paths; here only
/// `--version`).
fn qemu() -> Option<PathBuf> {
    tool("qemu-aarch64-static", "qemu-user-static")
}

/// Runs a binary of the release for `target`: natively, or under qemu for arm64.
fn run_bin(bin: &Path, target: &str, args: &[&str]) -> Option<Outcome> {
    let mut c = if target.starts_with("aarch64") {
        let mut c = Command::new(qemu()?);
        c.arg(bin);
        c
    } else {
        Command::new(bin)
    };
    c.args(args);
    Some(run(c))
}

#[test]
fn release_checksums_cover_every_file_and_verify() {
    let Some(r) = release() else { return };
    let sums = std::fs::read_to_string(r.path("SHA256SUMS")).unwrap();
    let listed: BTreeSet<String> = sums
        .lines()
        .map(|l| l.split_once("  ").expect("HASH  NAME").1.to_string())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(&r.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "SHA256SUMS")
        .collect();
    assert_eq!(listed, present, "SHA256SUMS must name every file, once");
    let mut want: BTreeSet<String> = ["supervise.yaml".to_string()].into();
    for bin in BINS {
        want.insert(format!("{bin}-{VERSION}.oci.tar"));
        for (arch, _, _) in ARCHES {
            want.insert(format!("{bin}-{VERSION}-linux-{arch}.tar.gz"));
            want.insert(format!("{bin}-{VERSION}-linux-{arch}.cdx.json"));
        }
    }
    assert_eq!(present, want, "the files of a release");
    let mut c = Command::new("sha256sum");
    c.args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&r.dir);
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
}

#[test]
fn release_tarballs_hold_static_binaries_that_say_what_they_are() {
    let Some(r) = release() else { return };
    for bin in BINS {
        for (arch, target, em) in ARCHES {
            let tgz = r.tarball(bin, arch);
            // Reproducible entries: the two files, root-owned, stamped with the commit's time.
            let mut c = Command::new("tar");
            c.args([
                "--list",
                "--verbose",
                "--numeric-owner",
                "--full-time",
                "-zf",
            ])
            .arg(&tgz);
            let o = run(c);
            assert_eq!(o.code(), Some(0), "{o}");
            let stamp = date(r.epoch, "+%Y-%m-%d %H:%M:%S");
            let mut entries: Vec<(String, String)> = o
                .stdout
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    assert_eq!(f[1], "0/0", "{tgz:?}: {l}");
                    assert_eq!(format!("{} {}", f[3], f[4]), stamp, "{tgz:?}: {l}");
                    (f[5].to_string(), f[0].to_string())
                })
                .collect();
            entries.sort();
            assert_eq!(
                entries,
                [
                    ("LICENSE".to_string(), "-rw-r--r--".to_string()),
                    (bin.to_string(), "-rwxr-xr-x".to_string())
                ],
                "{tgz:?}"
            );
            let dir = tempdir();
            let exe = r.extract(bin, arch, dir.path());
            let bytes = std::fs::read(&exe).unwrap();
            assert_eq!(machine(&bytes), em, "{tgz:?}: built for another machine");
            assert_eq!(
                supervisor::elf::linkage(&bytes).unwrap(),
                supervisor::elf::Linkage::Static,
                "{tgz:?}"
            );
            if bin == "supervisor" {
                assert!(bytes.len() <= 1 << 20, "{tgz:?}: {} bytes", bytes.len());
            }
            let Some(o) = run_bin(&exe, target, &["--version"]) else {
                return;
            };
            assert_eq!(o.code(), Some(0), "{o}");
            assert_eq!(o.stdout, r.version_line(bin, target), "{tgz:?}{o}");
        }
    }
}

/// The krew manifest, read as Kubernetes reads YAML (krew uses the same library).
fn krew_manifest(r: &Release) -> serde_json::Value {
    let text = std::fs::read_to_string(r.path("supervise.yaml")).unwrap();
    let docs = kubectl_supervise::yaml::parse(&text).expect("supervise.yaml parses");
    assert_eq!(docs.len(), 1, "one document");
    docs[0].to_json()
}

/// Whether a krew platform selector picks `os`/`arch` (krew accepts only these two keys).
fn selects(sel: &LabelSelector, os: &str, arch: &str) -> bool {
    let labels = BTreeMap::from([("os", os), ("arch", arch)]);
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k.as_str()) == Some(&v.as_str()));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|e| {
        let v = labels.get(e.key.as_str()).copied().unwrap_or("");
        let in_values = e.values.iter().flatten().any(|x| x == v);
        match e.operator.as_str() {
            "In" => in_values,
            "NotIn" => !in_values,
            other => panic!("operator {other} in a krew selector"),
        }
    });
    labels_ok && exprs_ok
}

/// krew's rules for a plugin manifest (its validation package and `validate-krew-manifest`,
/// which krew-index's CI runs), then the install krew would do, from the release's tarballs.
#[test]
fn release_krew_manifest_follows_krew_rules_and_matches_the_tarballs() {
    let Some(r) = release() else { return };
    let m = krew_manifest(&r);
    assert_eq!(
        m["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2",
        "{m}"
    );
    assert_eq!(m["kind"], "Plugin");
    // The file is named after the plugin, the name is safe and the binary is kubectl-NAME.
    let name = m["metadata"]["name"].as_str().unwrap();
    assert_eq!(name, "supervise");
    assert!(
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "krew names are lowercase with hyphens"
    );
    let spec = &m["spec"];
    assert_eq!(spec["version"], format!("v{VERSION}"), "semver with a v");
    assert!(spec["homepage"].as_str().unwrap().starts_with("https://"));
    let short = spec["shortDescription"].as_str().unwrap();
    assert!(
        !short.is_empty() && !short.contains('\n') && short.len() <= 70,
        "{short:?}"
    );
    for field in ["description", "caveats"] {
        for line in spec[field].as_str().unwrap().lines() {
            assert!(
                line.len() <= 80,
                "{field}: a line over 80 characters: {line:?}"
            );
        }
    }
    let platforms = spec["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), ARCHES.len(), "{m}");
    for (arch, _, _) in ARCHES {
        let chosen: Vec<&serde_json::Value> = platforms
            .iter()
            .filter(|p| {
                let sel: LabelSelector = serde_json::from_value(p["selector"].clone())
                    .expect("a Kubernetes label selector");
                selects(&sel, "linux", arch)
            })
            .collect();
        assert_eq!(chosen.len(), 1, "linux/{arch}: one platform, no overlap");
        let p = chosen[0];
        let file = format!("kubectl-supervise-{VERSION}-linux-{arch}.tar.gz");
        let uri = p["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("https://") && uri.ends_with(&format!("/v{VERSION}/{file}")),
            "{uri}"
        );
        let sum = p["sha256"].as_str().unwrap();
        assert_eq!(sum, sha256(&r.path(&file)), "{file}: the manifest's sha256");
        // The install: `files` copied out of the archive, then `bin` must be among them.
        let dir = tempdir();
        r.extract("kubectl-supervise", arch, dir.path());
        let mut installed = Vec::new();
        for f in p["files"].as_array().unwrap() {
            let from = f["from"].as_str().unwrap();
            assert_eq!(f["to"], ".", "{f}");
            assert!(dir.path().join(from).is_file(), "{file} has no {from}");
            installed.push(from);
        }
        assert!(
            installed.contains(&"LICENSE"),
            "krew-index wants the license installed"
        );
        assert_eq!(p["bin"], "kubectl-supervise");
        assert!(installed.contains(&"kubectl-supervise"));
        for key in sel_keys(p) {
            assert!(
                key == "os" || key == "arch",
                "krew supports only os and arch: {key}"
            );
        }
    }
}

fn sel_keys(p: &serde_json::Value) -> Vec<String> {
    let sel: LabelSelector = serde_json::from_value(p["selector"].clone()).unwrap();
    let mut keys: Vec<String> = sel.match_labels.unwrap_or_default().into_keys().collect();
    keys.extend(
        sel.match_expressions
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.key),
    );
    keys
}

/// Cargo.lock's packages: (name, version) -> checksum (None for our own crates).
fn locked() -> BTreeMap<(String, String), Option<String>> {
    let lock = std::fs::read_to_string(examples::repo().join("Cargo.lock")).unwrap();
    let mut out = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        out.insert(
            (field("name").unwrap(), field("version").unwrap()),
            field("checksum"),
        );
    }
    out
}

#[test]
fn release_sboms_describe_each_binary_from_cargo_lock() {
    let Some(r) = release() else { return };
    let lock = locked();
    let repo = examples::repo();
    for bin in BINS {
        for (arch, target, _) in ARCHES {
            let file = r.path(&format!("{bin}-{VERSION}-linux-{arch}.cdx.json"));
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                !text.contains(repo.to_str().unwrap()),
                "{file:?} names the checkout's path"
            );
            let sbom: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(sbom["bomFormat"], "CycloneDX");
            assert_eq!(sbom["specVersion"], "1.5");
            let meta = &sbom["metadata"];
            assert_eq!(meta["component"]["name"], bin, "{file:?}");
            assert_eq!(meta["component"]["version"], VERSION, "{file:?}");
            let stamp = date(r.epoch, "+%Y-%m-%dT%H:%M:%S");
            assert!(
                meta["timestamp"].as_str().unwrap().starts_with(&stamp),
                "{file:?}: the commit's time, {}",
                meta["timestamp"]
            );
            assert!(text.contains(target), "{file:?}: the target triple");
            let mut names = BTreeSet::new();
            for c in sbom["components"].as_array().unwrap() {
                let key = (
                    c["name"].as_str().unwrap().to_string(),
                    c["version"].as_str().unwrap().to_string(),
                );
                let sum = lock
                    .get(&key)
                    .unwrap_or_else(|| panic!("{file:?}: {key:?} is not in Cargo.lock"));
                if let Some(sum) = sum {
                    let hashes = c["hashes"].as_array().unwrap();
                    assert!(
                        hashes
                            .iter()
                            .any(|h| h["alg"] == "SHA-256" && h["content"] == sum.as_str()),
                        "{file:?}: {key:?} hash is not Cargo.lock's"
                    );
                }
                names.insert(key.0);
            }
            // Per binary: the plugin's crates are not the in-pod binary's.
            for c in ["nix", "serde_json"] {
                assert!(names.contains(c), "{file:?}: no {c}");
            }
            let plugin_only = ["clap", "k8s-openapi", "rustls", "saphyr-parser"];
            for c in plugin_only {
                assert_eq!(
                    names.contains(c),
                    bin == "kubectl-supervise",
                    "{file:?}: {c}"
                );
            }
        }
    }
}

/// Loads an image archive of the release into the tests' podman; returns the reference.
fn load(pm: &Podman, r: &Release, image: &str) -> String {
    let archive = r.path(&format!("{image}-{VERSION}.oci.tar"));
    let out = pm.copy(&["load", "--input", archive.to_str().unwrap()]);
    let want = format!("{IMAGE_PREFIX}/{image}:{VERSION}");
    assert!(out.stdout.contains(&want), "loaded as {want}{out}");
    want
}

/// Copies a file out of an image (of any architecture: the container is created, never run).
fn file_of_image(pm: &Podman, image: &str, path: &str) -> Vec<u8> {
    let name = format!("release-copy-{}", std::process::id());
    pm.ok(&["create", "--name", &name, image]);
    let dir = tempdir();
    let dest = dir.path().join("file");
    let cp = pm.run(&["cp", &format!("{name}:{path}"), dest.to_str().unwrap()]);
    pm.run(&["rm", "--force", &name]);
    assert_eq!(cp.code(), Some(0), "{cp}");
    std::fs::read(dest).unwrap()
}

/// One image archive: its OCI index names both architectures, `podman load` takes it (the
/// host's architecture), `podman pull --arch` the other, and each holds the tarballs' binaries.
fn check_image(pm: &Podman, r: &Release, image: &str, files: &[&str]) -> String {
    let reference = load(pm, r, image);
    for (arch, _, _) in ARCHES.iter().rev() {
        let archive = r.path(&format!("{image}-{VERSION}.oci.tar"));
        pm.copy(&[
            "pull",
            "--arch",
            arch,
            &format!("oci-archive:{}", archive.display()),
        ]);
        let inspect = pm.ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Architecture}} {{.Os}}",
            &reference,
        ]);
        assert_eq!(inspect.stdout.trim(), format!("{arch} linux"), "{image}");
        let dir = tempdir();
        for f in files {
            let from_image = file_of_image(pm, &reference, &format!("/usr/local/bin/{f}"));
            let from_tarball = std::fs::read(r.extract(f, arch, dir.path())).unwrap();
            assert!(
                from_image == from_tarball,
                "{image} for {arch}: {f} is not the tarball's"
            );
        }
    }
    // The last pull was amd64: the host runs it.
    reference
}

#[test]
fn release_images_load_with_podman_and_run() {
    let Some(r) = release() else { return };
    let Some((pm, _lock)) = containers::podman_or_skip() else {
        return;
    };
    let install = check_image(pm, &r, "supervisor", &["supervisor"]);
    let o = pm.ok(&["run", "--rm", "--network", "none", &install, "--version"]);
    assert_eq!(o.stdout, r.version_line("supervisor", ARCHES[0].1), "{o}");
    let webhook = check_image(
        pm,
        &r,
        "kubectl-supervise",
        &["supervisor", "kubectl-supervise"],
    );
    let config = pm.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}",
        &webhook,
    ]);
    assert_eq!(
        config.stdout.trim(),
        r#"65532:65532 ["/usr/local/bin/kubectl-supervise","webhook"] ["--cert=/tls/tls.crt","--key=/tls/tls.key"]"#
    );
    // The entrypoint is the webhook, as the non-root user, in an image with nothing else.
    let o = pm.ok(&["run", "--rm", "--network", "none", &webhook, "--help"]);
    assert!(o.stdout.contains("--cert"), "{o}");
    let o = pm.run(&["run", "--rm", "--network", "none", &webhook]);
    assert!(
        o.code() != Some(0) && o.stderr.contains("/tls/tls.crt"),
        "no key pair mounted: the webhook must say it cannot read its default one{o}"
    );
    pm.run(&["rmi", "--force", &install, &webhook]);
}

/// A fenced block of the README's Install section that contains `needle`.
fn readme_block(lang: &str, needle: &str) -> String {
    let readme = std::fs::read_to_string(examples::repo().join("README.md")).unwrap();
    let install = readme
        .split("\n## Install\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has an Install section");
    install
        .split(&format!("```{lang}\n"))
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains(needle))
        .unwrap_or_else(|| panic!("no ```{lang} block with {needle:?} in README's Install"))
        .to_string()
}

#[test]
fn readme_install_init_container_runs_the_release_image() {
    let Some(r) = release() else { return };
    let Some((pm, _lock)) = containers::podman_or_skip() else {
        return;
    };
    let yaml = readme_block("yaml", "install-supervisor");
    let install = format!("{IMAGE_PREFIX}/supervisor:{VERSION}");
    assert!(yaml.contains(&install), "the README names {install}");
    let pods = examples::pods_of("README.md", &yaml).expect("the README's manifest loads");
    assert_eq!(pods.len(), 1);
    let loaded = load(pm, &r, "supervisor");
    // The job's command becomes one that shows which binary the init container installed.
    let pod = containers::with_main_command(
        pods[0].clone(),
        "job",
        &["/supervisor/bin/supervisor", "--version"],
    );
    let played = containers::Played::play_keeping(pm, &pod, &[&install]);
    let states = played.complete(std::time::Duration::from_secs(60), &["job"]);
    played.assert_codes(&states, &[("job", 0)]);
    let logs = pm.ok(&["logs", &played.container("job")]);
    assert!(
        format!("{}{}", logs.stdout, logs.stderr)
            .contains(&r.version_line("supervisor", ARCHES[0].1)),
        "the job ran the release's binary{logs}"
    );
    drop(played);
    pm.run(&["rmi", "--force", &loaded]);
}

#[test]
fn readme_install_binary_download_runs() {
    let Some(r) = release() else { return };
    let block = readme_block("sh", "sha256sum");
    let dir = tempdir();
    // The download is the one thing this machine cannot do: `curl` takes the file from the
    // release directory instead, by its name in the URL.
    let script =
        format!("set -eu\ncurl() {{ for a; do :; done; cp \"$RELEASE/${{a##*/}}\" .; }}\n{block}");
    let mut c = Command::new("bash");
    c.args(["-c", &script])
        .current_dir(dir.path())
        .env("RELEASE", &r.dir);
    let o = run(c);
    assert_eq!(o.code(), Some(0), "{o}");
    assert!(o.stdout.contains(": OK"), "the checksum was checked{o}");
    assert!(
        o.stdout
            .contains(&r.version_line("supervisor", ARCHES[0].1)),
        "{o}"
    );
}

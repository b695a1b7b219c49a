//! Documents that are copies of a generated file stay equal to it (one source for every
//! document). The man page and docs/cli.md are checked by the library's unit tests, beside the
//! option table they come from; this checks what comes from outside the crate.

use std::fs;
use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README's benchmark table is `bench/results/readme-table.md` as the last full bench run
/// wrote it, between two markers: after `bench/run.sh`, paste the file between them.
#[test]
fn readme_benchmarks_are_the_last_full_run() {
    let readme = read("README.md");
    let table = read("bench/results/readme-table.md");
    let begin = "<!-- begin bench/results/readme-table.md -->\n";
    let end = "\n<!-- end bench/results/readme-table.md -->";
    let from = readme.find(begin).expect("README has the begin marker") + begin.len();
    let to = readme[from..].find(end).expect("README has the end marker") + from;
    assert_eq!(
        &readme[from..to],
        table.trim_end_matches('\n'),
        "README's benchmark table differs from bench/results/readme-table.md: paste the file \
         between the markers"
    );
}

/// Every mention of a released image (`ghcr.io/supervisor-dev/NAME:TAG`) in the documents,
/// examples, Dockerfiles and deploy manifests is tagged with the crate version, so bumping the version in
/// Cargo.toml cannot leave a manifest pointing at the previous release.
#[test]
fn released_image_references_carry_the_crate_version() {
    let version = env!("CARGO_PKG_VERSION");
    let mut files = vec!["README.md".to_string()];
    for dir in ["docs", "examples", "docker", "deploy"] {
        let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(env!("CARGO_MANIFEST_DIR")) {
                    files.push(rel.to_string_lossy().into_owned());
                }
            }
        }
    }
    let mut stale = Vec::new();
    let mut seen = 0;
    for f in &files {
        let Ok(text) = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)) else {
            continue;
        };
        for (at, _) in text.match_indices("ghcr.io/supervisor-dev/") {
            let reference: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "./:-_".contains(*c))
                .collect();
            // A sentence may end right after it.
            let reference = reference.trim_end_matches(['.', ':']);
            // A name alone (a prefix, a repository in a table) carries no tag to check.
            let Some((_, tag)) = reference.rsplit_once(':') else {
                continue;
            };
            seen += 1;
            if tag != version && tag != "VERSION" {
                stale.push(format!("{f}: {reference}"));
            }
        }
    }
    assert!(seen > 5, "found only {seen} tagged references");
    assert!(
        stale.is_empty(),
        "not tagged {version}:\n  {}",
        stale.join("\n  ")
    );
}

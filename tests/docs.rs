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

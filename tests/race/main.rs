//! The race explorer (issue 22 item 8): whole pods - a main and one to three sidecars, wired as
//! `examples/` wires them - run as process trees of the real `supervisor` binary, driven with
//! the kubelet's and the kernel's events at random times and in random order, then checked
//! against one table of rules (`rules::RULES`).
//!
//! Theory of operation: a seed is a pod and a schedule (`plan`); the kubelet (`pod`) runs it -
//! each container the supervisor as PID 1 of its own PID namespace, or in one shared namespace,
//! around a helper program (`helper`, this same binary) that reports what it receives - and
//! records what happened (`record`); the rules judge the record (`rules`); `report` prints a
//! failing seed in full and the counts of a batch. Several seeds run at once: most of a run is
//! waiting. `RACE_SEED=N` replays one seed and prints everything about it.
//!
//! `cargo test --test race` runs a batch (`--seeds`, `--first`, `--jobs`, or `RACE_SEEDS`,
//! `RACE_FIRST`, `RACE_JOBS`); `scripts/race.sh N` runs N. It prints libtest's lines, so CI's
//! summary counts it as one test, failed when a violation is not explained by a fix under way
//! (`rules::KNOWN`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod behaviour;
mod cgroup;
mod helper;
mod plan;
mod pod;
mod record;
mod report;
mod rng;
mod rules;
mod sys;

use plan::Plan;
use report::Counts;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const NAME: &str = "race::seeds";
/// What `cargo test` runs: a few hundred seeds, within two minutes on a busy two-core machine.
const CI_SEEDS: u64 = 300;
const JOBS: u64 = 8;
/// How many failing seeds a batch prints in full (the rest: one line each).
const SHOWN: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("helper") {
        helper::main(&args[1..]);
    }
    std::process::exit(explore(&args));
}

struct Options {
    first: u64,
    seeds: u64,
    jobs: u64,
    /// One seed, everything printed.
    replay: bool,
    keep: bool,
    /// Every violation of every seed printed, known ones too (`RACE_ALL`).
    all: bool,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("race: {name}={v:?} is not a number");
            std::process::exit(2)
        }
    }
}

/// Reads the options; None when libtest's filters leave nothing to run (or `--list`).
fn options(args: &[String]) -> Option<Options> {
    let mut o = Options {
        first: env_u64("RACE_FIRST").unwrap_or(1),
        seeds: env_u64("RACE_SEEDS").unwrap_or(CI_SEEDS),
        jobs: env_u64("RACE_JOBS").unwrap_or(JOBS),
        replay: false,
        keep: std::env::var_os("RACE_KEEP").is_some(),
        all: std::env::var_os("RACE_ALL").is_some(),
    };
    let (mut filters, mut skips, mut ignored_only) = (Vec::new(), Vec::new(), false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> u64 {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("race: {what} needs a number");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--seeds" => o.seeds = num("--seeds"),
            "--first" => o.first = num("--first"),
            "--jobs" => o.jobs = num("--jobs").max(1),
            "--list" => {
                println!("{NAME}: test");
                return None;
            }
            "--rules" => {
                print!("{}", rules::table());
                return None;
            }
            "--skip" => skips.extend(it.next().cloned()),
            // Only ignored tests are asked for: this one is not.
            "--ignored" => ignored_only = true,
            // libtest's options that take a value, passed by cargo or by hand.
            "--test-threads" | "--color" | "--format" | "--logfile" => {
                it.next();
            }
            s if s.starts_with('-') => {}
            s => filters.push(s.to_string()),
        }
    }
    // A replay wins over the batch size a script passes.
    if let Some(seed) = env_u64("RACE_SEED") {
        (o.first, o.seeds, o.replay) = (seed, 1, true);
    }
    let filtered = !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str()));
    if filtered || ignored_only || skips.iter().any(|k| NAME.contains(k.as_str())) {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 0.00s\n"
        );
        return None;
    }
    Some(o)
}

fn explore(args: &[String]) -> i32 {
    let Some(o) = options(args) else {
        return 0;
    };
    println!("\nrunning 1 test");
    let started = Instant::now();
    let passed = docs_current()
        && match setup() {
            Err(why) => skip(&why),
            Ok(setup) => run_batch(&o, &setup),
        };
    println!(
        "test {NAME} ... {}\n\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
        if passed { "ok" } else { "FAILED" },
        if passed { "ok" } else { "FAILED" },
        u8::from(passed),
        u8::from(!passed),
        started.elapsed().as_secs_f64()
    );
    if passed { 0 } else { 101 }
}

/// docs/race.md shows the rule table as `rules::table` makes it (one source for the words).
fn docs_current() -> bool {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/race.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let (begin, end) = ("<!-- begin race --rules -->\n", "<!-- end race --rules -->");
    let copy = doc
        .split_once(begin)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(table, _)| table);
    if copy == Some(rules::table().as_str()) {
        return true;
    }
    println!(
        "race: {}'s rule table differs from the rules: paste `cargo test --test race -- --rules` between its markers:\n{}",
        path.display(),
        rules::table()
    );
    false
}

/// The skip policy of the integration tests: loud, and a failure under CI.
fn skip(why: &str) -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    if ci {
        println!("race: CI is set, so the race explorer must run, but {why}");
        return false;
    }
    println!(
        "\n=== SKIPPED (CI is not set): {why}\n=== scripts/setup.sh installs what the tests need\n"
    );
    true
}

fn setup() -> Result<pod::Setup, String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { nix::libc::geteuid() } != 0 {
        return Err("the race explorer needs root (PID namespaces, mounts, cgroups)".into());
    }
    let own = cgroup::own().ok_or("no cgroup v2 hierarchy is mounted")?;
    clean_up_after_the_dead(&own);
    let cgroups = own.join(format!("supervisor-race-{}", std::process::id()));
    cgroup::make(&cgroups)
        .map_err(|e| format!("cannot make a cgroup under {}: {e}", own.display()))?;
    if !cgroups.join("cgroup.kill").exists() {
        let _ = std::fs::remove_dir(&cgroups);
        return Err("cgroup v2 has no cgroup.kill here (Linux 5.14 or later needed)".into());
    }
    let sup = std::env::var_os("RACE_SUPERVISOR").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_supervisor")),
        PathBuf::from,
    );
    if !sup.is_file() {
        return Err(format!(
            "no supervisor binary at {} (RACE_SUPERVISOR)",
            sup.display()
        ));
    }
    Ok(pod::Setup {
        sup,
        me: std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        cgroups,
        slack: env_u64("RACE_SLACK_MS").map_or(plan::SLACK, Duration::from_millis),
    })
}

/// Removes what an explorer that was killed (or panicked) left: its cgroups and its temp
/// directory, named after its pid.
fn clean_up_after_the_dead(cgroups: &Path) {
    let tmp = std::env::temp_dir();
    for dir in [cgroups, tmp.as_path()] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("supervisor-race-") else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                if dir == cgroups {
                    let _ = cgroup::remove_tree(&e.path());
                } else {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// One finished seed.
struct Done {
    plan: Plan,
    rec: record::Record,
    violations: Vec<rules::Violation>,
    vol: PathBuf,
}

fn run_batch(o: &Options, setup: &pod::Setup) -> bool {
    let tmp = std::env::temp_dir().join(format!("supervisor-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("temp directory");
    // A short name for the helpers, so that logs and markers stay readable.
    let helper = tmp.join("helper");
    std::os::unix::fs::symlink(&setup.me, &helper).expect("helper symlink");
    let setup = &pod::Setup {
        sup: setup.sup.clone(),
        me: helper,
        cgroups: setup.cgroups.clone(),
        slack: setup.slack,
    };
    println!(
        "race: seeds {}..={}, {} at a time, supervisor {}",
        o.first,
        o.first + o.seeds.saturating_sub(1),
        o.jobs.min(o.seeds),
        setup.sup.display()
    );
    let next = AtomicU64::new(o.first);
    let end = o.first + o.seeds;
    let (tx, rx) = mpsc::channel::<Done>();
    let mut counts = Counts::default();
    let mut shown = 0;
    std::thread::scope(|s| {
        for _ in 0..o.jobs.min(o.seeds) {
            let tx = tx.clone();
            let (next, tmp) = (&next, &tmp);
            s.spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    if tx.send(run_seed(seed, setup, tmp)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for d in rx {
            counts.add(&d.plan, &d.rec, &d.violations);
            let failing = d.violations.iter().any(|v| v.known.is_none());
            if o.replay || (failing && shown < SHOWN) {
                shown += usize::from(failing);
                println!("{}", report::detail(&d.plan, &d.rec, &d.violations, &d.vol));
            } else if failing || (o.all && !d.violations.is_empty()) {
                println!(
                    "race: seed {} (RACE_SEED={} shows it):",
                    d.plan.seed, d.plan.seed
                );
                for v in d.violations.iter().filter(|v| o.all || v.known.is_none()) {
                    println!("  {}", report::line(v));
                }
            }
            if !o.keep {
                let _ = std::fs::remove_dir_all(d.vol.parent().unwrap_or(&d.vol));
            }
        }
    });
    let _ = cgroup::remove_tree(&setup.cgroups);
    if !o.keep {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    println!("{}", counts.show());
    if !counts.failed_seeds.is_empty() {
        let mut seeds = counts.failed_seeds.clone();
        seeds.sort_unstable();
        let list: Vec<String> = seeds.iter().take(20).map(u64::to_string).collect();
        println!(
            "race: {} seeds with a violation no fix under way explains: {}{}",
            seeds.len(),
            list.join(" "),
            if seeds.len() > 20 { " ..." } else { "" }
        );
    }
    counts.failed_seeds.is_empty()
}

fn run_seed(seed: u64, setup: &pod::Setup, tmp: &Path) -> Done {
    let plan = Plan::generate(seed);
    let dir = tmp.join(seed.to_string());
    let rec = pod::run(&plan, setup, &dir);
    let vol = dir.join("vol");
    let violations = rules::check(&plan, &rec, &vol, setup.slack);
    Done {
        plan,
        rec,
        violations,
        vol,
    }
}

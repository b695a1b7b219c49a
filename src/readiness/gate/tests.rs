use super::*;

const MS: Duration = Duration::from_millis(1);

fn targets(list: &[&str]) -> Vec<Target> {
    list.iter().map(|t| t.parse().unwrap()).collect()
}

const TCP: &str = "tcp://127.0.0.1:5432";
const HTTP: &str = "http://127.0.0.1:8080/ready";
const FILE: &str = "file:/shared/ready";

fn attempts(actions: &[Action]) -> Vec<(usize, Instant)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Attempt { target, deadline } => Some((*target, *deadline)),
            _ => None,
        })
        .collect()
}

fn timer(actions: &[Action]) -> Option<Instant> {
    actions.iter().rev().find_map(|a| match a {
        Action::ArmTimer(t) => Some(*t),
        _ => None,
    })
}

fn logs(actions: &[Action], level: Level) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(l, t) if *l == level => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn failed(target: usize, why: &str) -> Input {
    Input::Finished {
        target,
        outcome: Err(why.into()),
    }
}

fn ok(target: usize) -> Input {
    Input::Finished {
        target,
        outcome: Ok(()),
    }
}

const START: Input = Input::Start {
    files_watched: true,
};

#[test]
fn every_target_gets_an_attempt_and_all_ready_is_ready() {
    let t0 = Instant::now();
    let mut g = Gate::new("wait-for", &targets(&[TCP, HTTP]), None);
    let a = g.on(START, t0);
    assert_eq!(
        attempts(&a),
        [(0, t0 + ATTEMPT_TIMEOUT), (1, t0 + ATTEMPT_TIMEOUT)]
    );
    // Nothing to retry yet: the only wake-up is the progress line's.
    assert_eq!(timer(&a), Some(t0 + PROGRESS_EVERY));
    let a = g.on(ok(1), t0 + 3 * MS);
    assert!(!a.contains(&Action::Ready));
    assert_eq!(
        logs(&a, Level::DEBUG),
        ["wait-for: http://127.0.0.1:8080/ready is ready"]
    );
    let a = g.on(ok(0), t0 + 4 * MS);
    assert_eq!(a.last(), Some(&Action::Ready));
    assert!(logs(&a, Level::DEBUG)[1].starts_with("wait-for: all targets ready after 4ms"));
    assert!(g.is_over());
    assert_eq!(g.on(Input::Timer, t0 + PROGRESS_EVERY), []);
}

#[test]
fn each_target_backs_off_on_its_own_from_10_to_100_ms() {
    let t0 = Instant::now();
    let mut g = Gate::new("wait-for", &targets(&[TCP, HTTP]), None);
    g.on(START, t0);
    // Target 1 keeps failing; target 0's attempt is still running all along.
    let mut now = t0 + MS;
    let mut seen = Vec::new();
    let mut a = g.on(failed(1, "refused"), now);
    for _ in 0..6 {
        let at = timer(&a).unwrap();
        seen.push(at - now);
        now = at;
        a = g.on(Input::Timer, now);
        assert_eq!(attempts(&a), [(1, now + ATTEMPT_TIMEOUT)]);
        a = g.on(failed(1, "refused"), now);
    }
    assert_eq!(seen, [10, 20, 40, 80, 100, 100].map(|n| n * MS));
    // A timer that fires with nothing due starts nothing.
    assert_eq!(attempts(&g.on(Input::Timer, now + MS)), []);
}

/// Issue 22: `--wait-timeout 1500ms` with a target that accepts and never answers ended after
/// 2.0 s, its second attempt running its full second past the deadline.
#[test]
fn an_attempt_is_clipped_to_what_is_left_of_the_deadline() {
    let t0 = Instant::now();
    let deadline = t0 + 1500 * MS;
    let mut g = Gate::new("wait-for", &targets(&[HTTP]), Some(1500 * MS));
    let a = g.on(START, t0);
    assert_eq!(attempts(&a), [(0, t0 + ATTEMPT_TIMEOUT)]);
    assert_eq!(timer(&a), Some(deadline));
    let now = t0 + ATTEMPT_TIMEOUT;
    let a = g.on(failed(0, "no answer within 1000ms"), now);
    assert_eq!(timer(&a), Some(now + 10 * MS));
    let a = g.on(Input::Timer, now + 10 * MS);
    assert_eq!(attempts(&a), [(0, deadline)], "clipped to the deadline");
    // At the deadline the attempt is still running: its own end, at the same instant, says why.
    assert_eq!(g.on(Input::Timer, deadline), []);
    let a = g.on(failed(0, "no answer within 490ms"), deadline);
    assert_eq!(
        a,
        [Action::NotReady(vec![
            "http://127.0.0.1:8080/ready (no answer within 490ms)".into()
        ])]
    );
    assert!(g.is_over());
}

#[test]
fn the_deadline_ends_the_gate_once_nothing_runs() {
    let t0 = Instant::now();
    let mut g = Gate::new("wait-for", &targets(&[TCP, FILE]), Some(700 * MS));
    g.on(START, t0);
    g.on(failed(1, "No such file or directory"), t0 + MS);
    g.on(ok(0), t0 + 2 * MS);
    let a = g.on(Input::Timer, t0 + 700 * MS);
    assert_eq!(
        a,
        [Action::NotReady(vec![
            "file:/shared/ready (No such file or directory)".into()
        ])]
    );
    // A file that changes after the deadline starts nothing: the gate is over.
    assert_eq!(
        g.on(
            Input::FilesChanged {
                files_watched: true
            },
            t0 + 701 * MS
        ),
        []
    );
}

#[test]
fn a_zero_timeout_still_makes_the_first_attempts() {
    let t0 = Instant::now();
    let mut g = Gate::new("wait-for", &targets(&[FILE, TCP]), Some(Duration::ZERO));
    let a = g.on(START, t0);
    assert_eq!(attempts(&a), [(0, t0), (1, t0)]);
    g.on(ok(0), t0);
    assert_eq!(
        g.on(failed(1, "refused"), t0),
        [Action::NotReady(vec![
            "tcp://127.0.0.1:5432 (refused)".into()
        ])]
    );
}

#[test]
fn watched_files_are_checked_again_when_they_change_not_on_a_timer() {
    let t0 = Instant::now();
    let mut g = Gate::new("wait-for", &targets(&[FILE, TCP]), None);
    g.on(START, t0);
    let a = g.on(failed(0, "No such file or directory"), t0 + MS);
    assert_eq!(
        timer(&a),
        Some(t0 + PROGRESS_EVERY),
        "no retry timer for a file"
    );
    let a = g.on(failed(1, "refused"), t0 + MS);
    assert_eq!(timer(&a), Some(t0 + 11 * MS));
    // The network target's retry leaves the file alone.
    assert_eq!(
        attempts(&g.on(Input::Timer, t0 + 11 * MS)),
        [(1, t0 + 11 * MS + ATTEMPT_TIMEOUT)]
    );
    // A change re-checks the file, and only the file.
    let changed = Input::FilesChanged {
        files_watched: true,
    };
    let a = g.on(changed.clone(), t0 + 20 * MS);
    assert_eq!(attempts(&a), [(0, t0 + 20 * MS + ATTEMPT_TIMEOUT)]);
    // While its check runs, another change does not start a second one.
    assert_eq!(attempts(&g.on(changed, t0 + 21 * MS)), []);
    assert!(!g.on(ok(0), t0 + 22 * MS).contains(&Action::Ready));
    assert_eq!(g.on(ok(1), t0 + 30 * MS).last(), Some(&Action::Ready));
}

#[test]
fn files_are_polled_on_the_backoff_where_they_cannot_be_watched() {
    let t0 = Instant::now();
    let mut g = Gate::new("ready-when", &targets(&[FILE]), None);
    g.on(
        Input::Start {
            files_watched: false,
        },
        t0,
    );
    let a = g.on(failed(0, "No such file or directory"), t0 + MS);
    assert_eq!(timer(&a), Some(t0 + 11 * MS));
    assert_eq!(attempts(&g.on(Input::Timer, t0 + 11 * MS)).len(), 1);
    // The watcher gives up watching later: a file waiting for a change gets a retry time.
    let mut g = Gate::new("ready-when", &targets(&[FILE]), None);
    g.on(START, t0);
    g.on(failed(0, "No such file or directory"), t0 + MS);
    let lost = Input::FilesChanged {
        files_watched: false,
    };
    assert_eq!(attempts(&g.on(lost, t0 + 2 * MS)).len(), 1);
    let a = g.on(failed(0, "No such file or directory"), t0 + 3 * MS);
    assert_eq!(
        timer(&a),
        Some(t0 + 23 * MS),
        "the backoff went on doubling"
    );
}

#[test]
fn progress_every_five_seconds_names_what_is_pending_and_why() {
    let t0 = Instant::now();
    let mut g = Gate::new("wait-for", &targets(&[FILE, TCP, HTTP]), None);
    g.on(START, t0);
    g.on(failed(0, "No such file or directory (os error 2)"), t0 + MS);
    g.on(ok(1), t0 + MS);
    // The HTTP target's first attempt is still running at 5 s (as if it had no deadline).
    let a = g.on(Input::Timer, t0 + PROGRESS_EVERY);
    assert_eq!(
        logs(&a, Level::INFO),
        [
            "wait-for: still waiting after 5s for file:/shared/ready (No such file or directory \
          (os error 2)), http://127.0.0.1:8080/ready (no answer yet)"
        ]
    );
    assert_eq!(timer(&a), Some(t0 + 2 * PROGRESS_EVERY));
    // Once each 5 s, however many inputs come in between.
    let changed = Input::FilesChanged {
        files_watched: true,
    };
    assert!(logs(&g.on(changed, t0 + 6 * PROGRESS_EVERY / 5), Level::INFO).is_empty());
}

#[test]
fn stale_and_repeated_inputs_change_nothing() {
    let t0 = Instant::now();
    let mut g = Gate::new("wait-for", &targets(&[TCP, HTTP]), None);
    assert_eq!(g.on(Input::Timer, t0), [], "nothing before the start");
    g.on(START, t0);
    assert_eq!(attempts(&g.on(START, t0 + MS)), [], "one start");
    g.on(ok(0), t0 + MS);
    // An outcome for a target that is ready, or not running, or does not exist.
    for input in [ok(0), failed(0, "late"), failed(7, "no such target")] {
        let a = g.on(input, t0 + 2 * MS);
        assert!(
            attempts(&a).is_empty() && !a.contains(&Action::Ready),
            "{a:?}"
        );
    }
    assert_eq!(g.on(ok(1), t0 + 3 * MS).last(), Some(&Action::Ready));
}

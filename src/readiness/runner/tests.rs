use super::*;
use crate::readiness::Target;
use crate::readiness::flight::Flight;
use std::net::TcpListener;

#[test]
fn attempts_run_side_by_side_each_to_its_own_deadline() {
    // Four ports that accept and stay silent, one that refuses, one file that is there.
    let silent: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "").unwrap();
    let mut targets: Vec<Target> = silent
        .iter()
        .map(|l| {
            let port = l.local_addr().unwrap().port();
            format!("http://127.0.0.1:{port}/").parse().unwrap()
        })
        .collect();
    targets.push(format!("tcp://127.0.0.1:{closed_port}").parse().unwrap());
    targets.push(Target::File(file));
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_millis(300);
    let out = run(targets
        .iter()
        .map(|t| (Attempt::probe(t), deadline))
        .collect());
    let took = t0.elapsed();
    for o in &out[..4] {
        assert!(
            o.as_ref().unwrap_err().contains("no status line yet"),
            "{o:?}"
        );
    }
    assert!(
        out[4].as_ref().unwrap_err().contains("refused"),
        "{:?}",
        out[4]
    );
    assert_eq!(out[5], Ok(None));
    assert!(
        took >= Duration::from_millis(300),
        "ended before the deadline: {took:?}"
    );
    // One after the other they would take 1.2 s: side by side, one deadline.
    assert!(
        took < Duration::from_millis(1000),
        "not concurrent: {took:?}"
    );
}

#[test]
fn nothing_to_run_returns_at_once() {
    assert!(run(Vec::new()).is_empty());
}

#[test]
fn a_flight_times_out_what_waits_and_steps_what_is_ready() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let t: Target = format!("http://127.0.0.1:{port}/").parse().unwrap();
    let t0 = Instant::now();
    let mut flight = Flight::default();
    assert_eq!(
        flight.launch(7, Attempt::probe(&t), t0 + Duration::from_secs(2), t0),
        None
    );
    assert_eq!(flight.deadline(), Some(t0 + Duration::from_secs(2)));
    assert_eq!(flight.waits().map(|(k, _, _)| k).collect::<Vec<_>>(), [7]);
    // Stepping a key that is not under way, or too early, ends nothing.
    assert_eq!(flight.ready(8), None);
    assert!(flight.expire(t0 + Duration::from_secs(1)).is_empty());
    let over = flight.expire(t0 + Duration::from_secs(2));
    assert_eq!(over.len(), 1);
    assert_eq!(over[0].0, 7);
    assert!(
        over[0]
            .1
            .as_ref()
            .unwrap_err()
            .starts_with("no answer within 2000ms")
    );
    assert!(flight.is_empty() && flight.deadline().is_none());
    // A file target ends at its launch, never under way.
    let dir = tempfile::tempdir().unwrap();
    let f = Target::File(dir.path().to_path_buf());
    assert_eq!(flight.launch(1, Attempt::probe(&f), t0, t0), Some(Ok(None)));
    assert!(flight.is_empty());
}

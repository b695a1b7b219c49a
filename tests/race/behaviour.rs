//! What a helper child does, as the plan decides it and as its command line carries it: when it
//! ends by itself and how, what it does on a stop signal (TERM or INT), whether it leaves a
//! process behind, and when it announces readiness.

use std::time::Duration;

/// How a child ends by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnEnd {
    Exit(i32),
    /// Dies by this signal (KILL, SEGV, ABRT): a crash.
    Die(i32),
    /// Forks a process that keeps running, then exits 0 (`redis-server --daemonize yes`).
    Daemonize,
}

/// What a child does when it receives TERM or INT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStop {
    /// Exits with this code after the delay.
    Exit(i32, Duration),
    /// Dies by the signal it received, after the delay.
    Die(Duration),
    /// Keeps running (only SIGKILL ends it).
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    /// Ends by itself this long after it starts, unless a stop ends it first.
    pub life: Option<(Duration, OwnEnd)>,
    pub on_stop: OnStop,
    /// Creates the file the sidecar's `--ready-when file:` waits for, this long after it starts.
    pub up: Option<Duration>,
    /// Starts a process of its own that outlives it (a shell's `server &`, a worker).
    pub linger: bool,
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn parse_ms(s: &str) -> Option<Duration> {
    s.parse().ok().map(Duration::from_millis)
}

impl Behaviour {
    /// The helper's arguments (`key=value`), after the role and the events file.
    pub fn to_args(&self, up_path: &str) -> Vec<String> {
        let mut a = Vec::new();
        if let Some((after, end)) = self.life {
            let end = match end {
                OwnEnd::Exit(c) => format!("exit:{c}"),
                OwnEnd::Die(s) => format!("die:{s}"),
                OwnEnd::Daemonize => "daemonize".to_string(),
            };
            a.push(format!("life={}:{end}", ms(after)));
        }
        a.push(match self.on_stop {
            OnStop::Exit(c, d) => format!("stop=exit:{c}:{}", ms(d)),
            OnStop::Die(d) => format!("stop=die:{}", ms(d)),
            OnStop::Ignore => "stop=ignore".to_string(),
        });
        if let Some(d) = self.up {
            a.push(format!("up={}:{up_path}", ms(d)));
        }
        if self.linger {
            a.push("linger=1".into());
        }
        a
    }

    /// Reads what [`to_args`](Self::to_args) wrote; the up file's path comes back beside it.
    pub fn from_args(args: &[String]) -> Option<(Behaviour, Option<String>)> {
        let mut b = Behaviour {
            life: None,
            on_stop: OnStop::Ignore,
            up: None,
            linger: false,
        };
        let mut up_path = None;
        for a in args {
            let (k, v) = a.split_once('=')?;
            match k {
                "life" => {
                    let (after, end) = v.split_once(':')?;
                    let end = match end.split_once(':') {
                        Some(("exit", c)) => OwnEnd::Exit(c.parse().ok()?),
                        Some(("die", s)) => OwnEnd::Die(s.parse().ok()?),
                        None if end == "daemonize" => OwnEnd::Daemonize,
                        _ => return None,
                    };
                    b.life = Some((parse_ms(after)?, end));
                }
                "stop" => {
                    let parts: Vec<&str> = v.split(':').collect();
                    b.on_stop = match parts.as_slice() {
                        ["exit", c, d] => OnStop::Exit(c.parse().ok()?, parse_ms(d)?),
                        ["die", d] => OnStop::Die(parse_ms(d)?),
                        ["ignore"] => OnStop::Ignore,
                        _ => return None,
                    };
                }
                "up" => {
                    let (after, path) = v.split_once(':')?;
                    b.up = Some(parse_ms(after)?);
                    up_path = Some(path.to_string());
                }
                "linger" => b.linger = v == "1",
                _ => return None,
            }
        }
        Some((b, up_path))
    }

    /// One line for the printed schedule.
    pub fn describe(&self) -> String {
        let life = match self.life {
            None => "runs until stopped".to_string(),
            Some((d, OwnEnd::Exit(c))) => format!("exits {c} by itself at +{}ms", ms(d)),
            Some((d, OwnEnd::Die(s))) => format!("dies of signal {s} by itself at +{}ms", ms(d)),
            Some((d, OwnEnd::Daemonize)) => {
                format!("daemonizes (exits 0, child left) at +{}ms", ms(d))
            }
        };
        let stop = match self.on_stop {
            OnStop::Exit(c, d) => format!("on TERM/INT exits {c} after {}ms", ms(d)),
            OnStop::Die(d) => format!("on TERM/INT dies of it after {}ms", ms(d)),
            OnStop::Ignore => "ignores TERM/INT".to_string(),
        };
        let mut s = format!("{life}; {stop}");
        if let Some(d) = self.up {
            s.push_str(&format!("; ready at +{}ms", ms(d)));
        }
        if self.linger {
            s.push_str("; leaves a process behind");
        }
        s
    }
}

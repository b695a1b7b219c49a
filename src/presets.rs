//! Presets for the proxies people stop most: `--quit NAME[:PORT]` and `--wait-for NAME[:PORT]`
//! expand to each proxy's documented loopback endpoints.
//!
//! The table is the one source: config expands it, the start-up log names the expansion, and a
//! test checks the README's preset table against it.

/// One proxy's admin endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    /// `GET` this for readiness: port and path.
    pub ready: (u16, &'static str),
    /// `POST` this to make it exit: port and path.
    pub quit: (u16, &'static str),
    /// What the proxy needs for the quit endpoint to answer.
    pub needs: &'static str,
}

pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "istio",
        ready: (15021, "/healthz/ready"),
        quit: (15020, "/quitquitquit"),
        needs: "nothing: pilot-agent serves both by default",
    },
    Preset {
        name: "envoy",
        ready: (9901, "/ready"),
        quit: (9901, "/quitquitquit"),
        needs: "an admin listener on loopback (`admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9901}}}`); give its port as envoy:PORT",
    },
    Preset {
        name: "linkerd",
        ready: (4191, "/ready"),
        quit: (4191, "/shutdown"),
        needs: "the annotation `config.linkerd.io/proxy-admin-shutdown: enabled` (the endpoint is off by default since 2024)",
    },
    Preset {
        name: "cloud-sql-proxy",
        ready: (9090, "/startup"),
        quit: (9091, "/quitquitquit"),
        needs: "the flags `--quitquitquit` (admin port 9091) and `--health-check` (port 9090)",
    },
];

/// Splits `NAME[:PORT]` into a preset and the port to use instead of its default, if any.
/// `None` when NAME is no preset.
fn lookup(spec: &str) -> Option<Result<(Preset, Option<u16>), String>> {
    let (name, port) = match spec.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (spec, None),
    };
    let preset = *PRESETS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim()))?;
    Some(match port {
        None => Ok((preset, None)),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok((preset, Some(n))),
            _ => Err(format!("{p:?} is not a port (1-65535)")),
        },
    })
}

fn url((port, path): (u16, &str), over: Option<u16>) -> String {
    format!("http://127.0.0.1:{}{path}", over.unwrap_or(port))
}

/// The readiness URL of a preset target (`istio`, `envoy:15000`); `None` when it is no preset.
pub fn ready_url(spec: &str) -> Option<Result<String, String>> {
    lookup(spec).map(|r| r.map(|(p, port)| url(p.ready, port)))
}

/// The quit URL of a `--quit` value; an error names the presets when it is none.
pub fn quit_url(spec: &str) -> Result<String, String> {
    match lookup(spec) {
        Some(r) => r.map(|(p, port)| url(p.quit, port)),
        None => Err(format!(
            "unknown preset {spec:?} (use {}, optionally with :PORT)",
            PRESETS.map(|p| p.name).join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansions() {
        assert_eq!(
            quit_url("istio").unwrap(),
            "http://127.0.0.1:15020/quitquitquit"
        );
        assert_eq!(
            ready_url("istio").unwrap().unwrap(),
            "http://127.0.0.1:15021/healthz/ready"
        );
        assert_eq!(
            quit_url("envoy:15000").unwrap(),
            "http://127.0.0.1:15000/quitquitquit"
        );
        assert_eq!(
            quit_url("linkerd").unwrap(),
            "http://127.0.0.1:4191/shutdown"
        );
        assert_eq!(
            quit_url("cloud-sql-proxy").unwrap(),
            "http://127.0.0.1:9091/quitquitquit"
        );
        assert_eq!(
            ready_url("Cloud-SQL-Proxy").unwrap().unwrap(),
            "http://127.0.0.1:9090/startup"
        );
        assert!(ready_url("nginx").is_none());
        assert!(quit_url("nginx").unwrap_err().contains("istio, envoy"));
        for bad in ["envoy:", "envoy:0", "envoy:99999", "istio:x"] {
            assert!(quit_url(bad).is_err(), "{bad}");
        }
    }

    /// The README documents every preset with the endpoints the table has.
    #[test]
    fn readme_table_matches() {
        let readme = include_str!("../README.md");
        for p in PRESETS {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}`", p.name)))
                .unwrap_or_else(|| panic!("README has no preset row for {}", p.name));
            assert!(
                row.contains(&format!(":{}{}", p.ready.0, p.ready.1)),
                "{row}"
            );
            assert!(row.contains(&format!(":{}{}", p.quit.0, p.quit.1)), "{row}");
        }
    }
}

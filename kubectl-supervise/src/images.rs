//! What well-known images run when a container has no `command`, and how some sidecars that
//! cannot be wrapped are told to quit.
//!
//! A manifest does not say what an image's ENTRYPOINT and CMD are, yet `inject` must put the
//! original program after `supervisor ... --`, and `check` must see the supervisor that an
//! image bakes in. This table covers common images; `--entrypoint NAME=...` (or the
//! `supervisor/entrypoints` annotation) covers the rest. docs/kubectl-supervise.md lists it,
//! and a test keeps the two in step.

/// An image's exec-form ENTRYPOINT and CMD, the variables it sets that matter here, and how to
/// tell that a sidecar running it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownImage {
    /// A name pattern: `*` matches any run of characters. Matched against the reference with
    /// `docker.io/` and `library/` removed.
    pub pattern: &'static str,
    /// None when it differs between versions of the image (give `--entrypoint`).
    pub entrypoint: Option<&'static [&'static str]>,
    pub cmd: &'static [&'static str],
    /// `SUPERVISOR_*` variables (the images docker/ builds), and those the image sets that
    /// decide its readiness (`DOCKER_TLS_CERTDIR`).
    pub env: &'static [(&'static str, &'static str)],
    /// How `inject` wires the readiness of a sidecar running it, and what `check` knows it
    /// serves; None: nothing known.
    pub ready: Option<Ready>,
}

/// How a known sidecar's readiness is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// It accepts TCP connections on loopback: on `port`, unless its command line (`flags`,
    /// `--port N`, `--port=N`, `-pN`) or a variable of its environment (`env`: `N` or
    /// `ADDR:N`) says another.
    Tcp {
        port: u16,
        flags: &'static [&'static str],
        env: &'static [&'static str],
    },
    /// A readiness preset of the supervisor (`supervisor::presets`), on the preset's port
    /// unless `flags` or `env` move it; only with the argument `needs` when given (the
    /// endpoint exists only then).
    Preset {
        name: &'static str,
        flags: &'static [&'static str],
        env: &'static [&'static str],
        needs: Option<&'static str>,
    },
    /// dockerd: its socket answering, and with TLS the client certificates written (the
    /// supervisor's `docker` preset); see [`docker`].
    Docker,
}

const NO_READY: Option<Ready> = None;

/// The table; the first match wins.
pub const KNOWN_IMAGES: &[KnownImage] = &[
    // The images docker/ builds (any registry): supervisor baked in as the ENTRYPOINT.
    KnownImage {
        pattern: "*/dind-supervised:*",
        entrypoint: Some(&[
            "/usr/local/bin/supervisor",
            "sidecar",
            "--",
            "dockerd-entrypoint.sh",
        ]),
        cmd: &[],
        env: &[("SUPERVISOR_GRACE", "20s")],
        ready: NO_READY,
    },
    KnownImage {
        pattern: "*/ci-agent:*",
        entrypoint: Some(&["/usr/local/bin/supervisor", "main", "--"]),
        cmd: &["docker", "version"],
        env: &[("SUPERVISOR_WAIT_TIMEOUT", "2m")],
        ready: NO_READY,
    },
    KnownImage {
        pattern: "*/kubectl-supervise:*",
        entrypoint: Some(&["/usr/local/bin/kubectl-supervise", "webhook"]),
        cmd: &["--cert=/tls/tls.crt", "--key=/tls/tls.key"],
        env: &[],
        ready: NO_READY,
    },
    KnownImage {
        pattern: "*/supervisor:*",
        entrypoint: Some(&["/usr/local/bin/supervisor"]),
        cmd: &["--help"],
        env: &[],
        ready: NO_READY,
    },
    KnownImage {
        pattern: "docker:*dind*",
        entrypoint: Some(&["dockerd-entrypoint.sh"]),
        cmd: &[],
        env: &[("DOCKER_TLS_CERTDIR", "/certs")],
        ready: Some(Ready::Docker),
    },
    KnownImage {
        pattern: "docker:*",
        entrypoint: Some(&["docker-entrypoint.sh"]),
        cmd: &["sh"],
        env: &[],
        ready: NO_READY,
    },
    KnownImage {
        pattern: "redis:*",
        entrypoint: Some(&["docker-entrypoint.sh"]),
        cmd: &["redis-server"],
        env: &[],
        ready: Some(Ready::Tcp {
            port: 6379,
            flags: &["--port"],
            env: &[],
        }),
    },
    KnownImage {
        pattern: "postgres:*",
        entrypoint: Some(&["docker-entrypoint.sh"]),
        cmd: &["postgres"],
        env: &[],
        ready: Some(Ready::Tcp {
            port: 5432,
            flags: &["-p", "--port", "port"],
            env: &["PGPORT"],
        }),
    },
    KnownImage {
        pattern: "mysql:*",
        entrypoint: Some(&["docker-entrypoint.sh"]),
        cmd: &["mysqld"],
        env: &[],
        ready: Some(Ready::Tcp {
            port: 3306,
            flags: &["-P", "--port"],
            env: &["MYSQL_TCP_PORT"],
        }),
    },
    KnownImage {
        pattern: "memcached:*",
        entrypoint: Some(&["docker-entrypoint.sh"]),
        cmd: &["memcached"],
        env: &[],
        ready: Some(Ready::Tcp {
            port: 11211,
            flags: &["-p", "--port"],
            env: &[],
        }),
    },
    KnownImage {
        pattern: "nginx:*",
        entrypoint: Some(&["/docker-entrypoint.sh"]),
        cmd: &["nginx", "-g", "daemon off;"],
        env: &[],
        ready: NO_READY,
    },
    KnownImage {
        pattern: "gcr.io/cloud-sql-connectors/cloud-sql-proxy:*",
        entrypoint: Some(&["/cloud-sql-proxy"]),
        cmd: &[],
        env: &[],
        ready: Some(Ready::Preset {
            name: "cloud-sql-proxy",
            flags: &["--http-port"],
            env: &["CSQL_PROXY_HTTP_PORT"],
            needs: Some("--health-check"),
        }),
    },
    KnownImage {
        pattern: "*/proxyv2:*",
        entrypoint: Some(&["/usr/local/bin/pilot-agent"]),
        cmd: &[],
        env: &[],
        ready: Some(Ready::Preset {
            name: "istio",
            flags: &[],
            env: &[],
            needs: None,
        }),
    },
    KnownImage {
        pattern: "envoyproxy/envoy:*",
        entrypoint: Some(&["/docker-entrypoint.sh"]),
        cmd: &["envoy", "-c", "/etc/envoy/envoy.yaml"],
        env: &[],
        ready: Some(Ready::Preset {
            name: "envoy",
            flags: &[],
            env: &[],
            needs: None,
        }),
    },
    // Its ENTRYPOINT changed between Linkerd releases; its injector writes the container.
    KnownImage {
        pattern: "*/linkerd/proxy:*",
        entrypoint: None,
        cmd: &[],
        env: &[],
        ready: Some(Ready::Preset {
            name: "linkerd",
            flags: &[],
            env: &["LINKERD2_PROXY_ADMIN_LISTEN_ADDR"],
            needs: None,
        }),
    },
    KnownImage {
        pattern: "busybox*",
        entrypoint: Some(&[]),
        cmd: &["sh"],
        env: &[],
        ready: NO_READY,
    },
    KnownImage {
        pattern: "alpine*",
        entrypoint: Some(&[]),
        cmd: &["/bin/sh"],
        env: &[],
        ready: NO_READY,
    },
];

/// An HTTP endpoint of a sidecar that is not wrapped: a quit URL that stops it, or a health
/// endpoint a main waits for, and the argument the sidecar needs for the endpoint to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub pattern: &'static str,
    pub port: u16,
    /// A path prefix; the endpoint stops the sidecar when `quits`.
    pub path: &'static str,
    pub quits: bool,
    pub needs_arg: Option<&'static str>,
}

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        pattern: "gcr.io/cloud-sql-connectors/cloud-sql-proxy:*",
        port: 9091,
        path: "/quitquitquit",
        quits: true,
        needs_arg: Some("--quitquitquit"),
    },
    Endpoint {
        pattern: "gcr.io/cloud-sql-connectors/cloud-sql-proxy:*",
        port: 9090,
        path: "/",
        quits: false,
        needs_arg: Some("--health-check"),
    },
    Endpoint {
        pattern: "*/proxyv2:*",
        port: 15020,
        path: "/quitquitquit",
        quits: true,
        needs_arg: None,
    },
];

fn normalize(image: &str) -> &str {
    let s = image.strip_prefix("docker.io/").unwrap_or(image);
    s.strip_prefix("library/").unwrap_or(s)
}

/// Glob match with `*` only.
pub fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some((first, rest)) = parts.split_first() else {
        return false;
    };
    let Some(mut tail) = name.strip_prefix(first) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        if last {
            return tail.ends_with(part);
        }
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.is_empty()
}

pub fn known(image: &str) -> Option<&'static KnownImage> {
    let name = normalize(image);
    KNOWN_IMAGES.iter().find(|k| matches(k.pattern, name))
}

/// What a container of `image` runs when it has no `command`: the image's ENTRYPOINT, and its
/// CMD unless the container has `args` (which replace it). None when the image is not known.
pub fn image_command(image: &str, has_args: bool) -> Option<Vec<String>> {
    let k = known(image)?;
    let mut v: Vec<String> = k.entrypoint?.iter().map(|s| s.to_string()).collect();
    if !has_args {
        v.extend(k.cmd.iter().map(|s| s.to_string()));
    }
    Some(v)
}

/// The endpoints an image serves.
pub fn endpoints(image: &str) -> impl Iterator<Item = &'static Endpoint> {
    let name = normalize(image).to_string();
    ENDPOINTS.iter().filter(move |e| matches(e.pattern, &name))
}

// ---------------------------------------------------------------------------------------------
// Readiness and what a sidecar serves
// ---------------------------------------------------------------------------------------------

impl Ready {
    /// One line for the docs' table (a test keeps the two in step).
    pub fn describe(&self) -> String {
        let words = |v: &[&str]| {
            v.iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let moved = |flags: &[&str], env: &[&str]| {
            let by: Vec<String> = [words(flags), words(env)]
                .into_iter()
                .filter(|w| !w.is_empty())
                .collect();
            if by.is_empty() {
                String::new()
            } else {
                format!(", port from {}", by.join(", "))
            }
        };
        match self {
            Ready::Tcp { port, flags, env } => {
                format!("`tcp://127.0.0.1:{port}`{}", moved(flags, env))
            }
            Ready::Preset {
                name,
                flags,
                env,
                needs,
            } => {
                let needs = needs
                    .map(|n| format!(", with `{n}` only"))
                    .unwrap_or_default();
                format!("preset `{name}`{}{needs}", moved(flags, env))
            }
            Ready::Docker => "preset `docker` on its socket (below)".into(),
        }
    }
}

/// What a sidecar serves, as far as its manifest and the table tell.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Serves {
    /// The readiness target `inject` wires for it (`--ready-when`, the startupProbe).
    pub target: Option<String>,
    /// The unix sockets it listens on: paths in its own filesystem.
    pub sockets: Vec<String>,
    /// The TCP ports it listens on.
    pub ports: Vec<u16>,
}

/// A variable of an environment (the last setting wins, as in a container spec).
pub fn env_var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The port the last of `flags` gives in a command line: `--port 7000`, `--port=7000`,
/// `-p7000`.
fn flag_port(argv: &[String], flags: &[&str]) -> Option<u16> {
    let mut port = None;
    let mut words = argv.iter();
    while let Some(w) = words.next() {
        for f in flags {
            let value = if w == f {
                words.clone().next().map(String::as_str)
            } else {
                w.strip_prefix(f).map(|r| r.strip_prefix('=').unwrap_or(r))
            };
            if let Some(p) = value.and_then(|v| v.parse::<u16>().ok()).filter(|p| *p > 0) {
                port = Some(p);
            }
        }
    }
    port
}

/// The port a variable gives: `7000`, or `ADDR:7000`.
fn env_port(env: &[(String, String)], vars: &[&str]) -> Option<u16> {
    vars.iter().find_map(|v| {
        let value = env_var(env, v)?;
        let port = value.rsplit(':').next().unwrap_or(value);
        port.parse::<u16>().ok().filter(|p| *p > 0)
    })
}

/// What a container of `image`, running `argv` with `env` (over the image's own variables),
/// serves; None when the image is not known to serve anything.
pub fn serves(image: &str, argv: &[String], env: &[(String, String)]) -> Option<Serves> {
    let k = known(image)?;
    let mut all: Vec<(String, String)> = k
        .env
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    all.extend(env.iter().cloned());
    let env = all.as_slice();
    match k.ready? {
        Ready::Tcp {
            port,
            flags,
            env: vars,
        } => {
            let port = flag_port(argv, flags)
                .or_else(|| env_port(env, vars))
                .unwrap_or(port);
            Some(Serves {
                target: Some(format!("tcp://127.0.0.1:{port}")),
                sockets: Vec::new(),
                ports: vec![port],
            })
        }
        Ready::Preset {
            name,
            flags,
            env: vars,
            needs,
        } => {
            let enabled = needs.is_none_or(|n| {
                argv.iter()
                    .any(|a| a == n || a.starts_with(&format!("{n}=")))
            });
            let target = match flag_port(argv, flags).or_else(|| env_port(env, vars)) {
                Some(p) => format!("{name}:{p}"),
                None => name.to_string(),
            };
            Some(Serves {
                target: enabled.then_some(target),
                ..Default::default()
            })
        }
        Ready::Docker => docker(image, argv, env),
    }
}

/// The values of dockerd's `--host`/`-H` options.
fn docker_hosts(opts: &[String]) -> Vec<String> {
    let mut hosts = Vec::new();
    let mut words = opts.iter();
    while let Some(w) = words.next() {
        if w == "--host" || w == "-H" {
            hosts.extend(words.next().cloned());
        } else if let Some(h) = w.strip_prefix("--host=").or_else(|| w.strip_prefix("-H")) {
            hosts.push(h.strip_prefix('=').unwrap_or(h).to_string());
        }
    }
    hosts
}

/// The port of a `tcp://HOST[:PORT]` endpoint (docker's default: 2376 with TLS, else 2375).
pub fn docker_tcp_port(endpoint: &str, tls: bool) -> Option<u16> {
    let rest = endpoint.strip_prefix("tcp://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((_, p)) if !p.ends_with(']') => p.parse().ok(),
        _ => Some(if tls { 2376 } else { 2375 }),
    }
}

/// docker:dind. Its `dockerd-entrypoint.sh`, given no arguments or options only, starts
/// `dockerd` on its default socket (`DOCKER_HOST` when that is `unix://`; rootless: in
/// `XDG_RUNTIME_DIR`) and on TCP: port 2376 with TLS when `DOCKER_TLS_CERTDIR` is set (the
/// image sets `/certs`), after writing the certificates there, else 2375; `--host` options
/// add endpoints. Given `dockerd ...`, it runs that as it is: no certificates are made.
fn docker(image: &str, argv: &[String], env: &[(String, String)]) -> Option<Serves> {
    let program = |w: &String| {
        std::path::Path::new(w)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (defaults, opts) = match argv {
        [ep, rest @ ..] if program(ep) == "dockerd-entrypoint.sh" => match rest.first() {
            None => (true, rest),
            Some(a) if a.starts_with('-') => (true, rest),
            Some(d) if program(d) == "dockerd" => (false, &rest[1..]),
            Some(_) => return None,
        },
        [d, rest @ ..] if program(d) == "dockerd" => (false, rest),
        _ => return None,
    };
    let tls = env_var(env, "DOCKER_TLS_CERTDIR").is_some_and(|v| !v.is_empty());
    let hosts = docker_hosts(opts);
    let mut sockets: Vec<String> = hosts
        .iter()
        .filter_map(|h| h.strip_prefix("unix://").map(str::to_string))
        .collect();
    let mut ports: Vec<u16> = hosts
        .iter()
        .filter_map(|h| docker_tcp_port(h, tls))
        .collect();
    if defaults {
        let default = match env_var(env, "DOCKER_HOST") {
            Some(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
            _ if image.contains("rootless") => {
                let dir = env_var(env, "XDG_RUNTIME_DIR").unwrap_or("/run/user/1000");
                format!("{dir}/docker.sock")
            }
            _ => "/var/run/docker.sock".to_string(),
        };
        sockets.push(default);
        ports.push(if tls { 2376 } else { 2375 });
    } else if sockets.is_empty() && ports.is_empty() {
        sockets.push("/var/run/docker.sock".into());
    }
    // The socket the mains most likely share: the first one the manifest names.
    let target = sockets.first().map(|s| {
        if tls && !defaults {
            // No certificates will come: the preset would wait for them forever.
            format!("http+unix:{s}:/_ping")
        } else {
            format!("docker:unix://{s}")
        }
    });
    Some(Serves {
        target,
        sockets,
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("docker:*dind*", "docker:27-dind"));
        assert!(matches("docker:*dind*", "docker:dind-rootless"));
        assert!(!matches("docker:*dind*", "docker:27-cli"));
        assert!(matches("busybox*", "busybox"));
        assert!(matches("*/ci-agent:*", "registry.example.com/ci-agent:27"));
        assert!(!matches("redis:*", "myredis:7"));
        assert_eq!(
            known("docker.io/library/redis:7-alpine").map(|k| k.cmd),
            Some(&["redis-server"][..])
        );
        assert_eq!(
            known("docker:27-dind").and_then(|k| k.entrypoint),
            Some(&["dockerd-entrypoint.sh"][..])
        );
        assert_eq!(
            image_command("redis:7", false),
            Some(vec!["docker-entrypoint.sh".into(), "redis-server".into()])
        );
        assert_eq!(
            image_command("redis:7", true),
            Some(vec!["docker-entrypoint.sh".into()])
        );
        assert_eq!(
            image_command("cr.l5d.io/linkerd/proxy:edge-25.1.1", false),
            None
        );
        assert!(known("example.org/app:1").is_none());
    }

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn target(image: &str, argv: &[&str], e: &[(&str, &str)]) -> Option<String> {
        serves(image, &words(argv), &env(e)).and_then(|s| s.target)
    }

    #[test]
    fn databases_are_ready_on_their_port_unless_told_another() {
        let redis = ["docker-entrypoint.sh", "redis-server"];
        assert_eq!(
            target("redis:7", &redis, &[]).as_deref(),
            Some("tcp://127.0.0.1:6379")
        );
        let moved = ["redis-server", "--port", "7000", "--save", ""];
        assert_eq!(
            target("redis:7", &moved, &[]).as_deref(),
            Some("tcp://127.0.0.1:7000")
        );
        let pg = ["postgres", "-c", "port=5433"];
        assert_eq!(
            target("postgres:16", &pg, &[]).as_deref(),
            Some("tcp://127.0.0.1:5433")
        );
        assert_eq!(
            target("postgres:16", &["postgres"], &[("PGPORT", "6000")]).as_deref(),
            Some("tcp://127.0.0.1:6000")
        );
        assert_eq!(
            target("mysql:8", &["mysqld", "--port=3307"], &[]).as_deref(),
            Some("tcp://127.0.0.1:3307")
        );
        assert_eq!(
            target("memcached:1", &["memcached", "-p11212"], &[]).as_deref(),
            Some("tcp://127.0.0.1:11212")
        );
        assert_eq!(target("example.org/db:1", &["db"], &[]), None);
    }

    #[test]
    fn proxies_use_the_presets() {
        let proxy = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1";
        assert_eq!(
            target(proxy, &["/cloud-sql-proxy", "--health-check", "p:r:i"], &[]).as_deref(),
            Some("cloud-sql-proxy")
        );
        assert_eq!(
            target(
                proxy,
                &["/cloud-sql-proxy", "--health-check", "--http-port=9095"],
                &[]
            )
            .as_deref(),
            Some("cloud-sql-proxy:9095")
        );
        // Without --health-check the endpoint does not exist: nothing to wait for.
        assert_eq!(target(proxy, &["/cloud-sql-proxy", "p:r:i"], &[]), None);
        assert_eq!(
            target(
                "docker.io/istio/proxyv2:1.24.0",
                &["/usr/local/bin/pilot-agent"],
                &[]
            )
            .as_deref(),
            Some("istio")
        );
        assert_eq!(
            target("envoyproxy/envoy:v1.32-latest", &["envoy"], &[]).as_deref(),
            Some("envoy")
        );
        let admin = [("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "0.0.0.0:4192")];
        assert_eq!(
            target("cr.l5d.io/linkerd/proxy:edge-25.1.1", &["x"], &admin).as_deref(),
            Some("linkerd:4192")
        );
        // Every preset named here is one the supervisor knows.
        for k in KNOWN_IMAGES {
            if let Some(Ready::Preset { name, .. }) = k.ready {
                assert!(supervisor::presets::ready_url(name).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn dind_is_ready_when_dockerd_answers_on_its_socket() {
        let dind = "docker:27-dind";
        let ep = "dockerd-entrypoint.sh";
        let plain = [("DOCKER_TLS_CERTDIR", "")];
        // The socket in --host, TCP 2375 without TLS.
        let s = serves(
            dind,
            &words(&[ep, "--host=unix:///var/run/dind/docker.sock"]),
            &env(&plain),
        )
        .expect("serves");
        assert_eq!(
            s.target.as_deref(),
            Some("docker:unix:///var/run/dind/docker.sock")
        );
        assert_eq!(
            s.sockets,
            ["/var/run/dind/docker.sock", "/var/run/docker.sock"]
        );
        assert_eq!(s.ports, [2375]);
        // The image's default: TLS on 2376, the default socket (or DOCKER_HOST's).
        let s = serves(dind, &words(&[ep]), &[]).expect("serves");
        assert_eq!(
            s.target.as_deref(),
            Some("docker:unix:///var/run/docker.sock")
        );
        assert_eq!(s.ports, [2376]);
        let s = serves(
            dind,
            &words(&[ep]),
            &env(&[("DOCKER_HOST", "unix:///run/d.sock")]),
        )
        .expect("serves");
        assert_eq!(s.target.as_deref(), Some("docker:unix:///run/d.sock"));
        let s = serves(
            dind,
            &words(&[ep, "-H", "tcp://0.0.0.0:2999"]),
            &env(&plain),
        )
        .expect("serves");
        assert_eq!(s.ports, [2999, 2375]);
        // Rootless: the socket is in XDG_RUNTIME_DIR.
        let s = serves("docker:27-dind-rootless", &words(&[ep]), &[]).expect("serves");
        assert_eq!(
            s.target.as_deref(),
            Some("docker:unix:///run/user/1000/docker.sock")
        );
        // `dockerd` as it is: the image's DOCKER_TLS_CERTDIR makes no certificates then.
        let direct = words(&[ep, "dockerd", "--host=unix:///x/d.sock"]);
        let s = serves(dind, &direct, &env(&[("DOCKER_TLS_CERTDIR", "/certs")])).expect("serves");
        assert_eq!(s.target.as_deref(), Some("http+unix:/x/d.sock:/_ping"));
        assert_eq!(
            target(dind, &["dockerd"], &plain).as_deref(),
            Some("docker:unix:///var/run/docker.sock")
        );
        // Something else than dockerd: nothing known.
        assert_eq!(serves(dind, &words(&[ep, "sh", "-c", "x"]), &[]), None);
        assert_eq!(docker_tcp_port("tcp://localhost", true), Some(2376));
        assert_eq!(docker_tcp_port("tcp://[::1]:2999", false), Some(2999));
    }
}

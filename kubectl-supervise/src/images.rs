//! What well-known images run when a container has no `command`, and how some sidecars that
//! cannot be wrapped are told to quit.
//!
//! A manifest does not say what an image's ENTRYPOINT and CMD are, yet `inject` must put the
//! original program after `supervisor ... --`, and `check` must see the supervisor that an
//! image bakes in. This table covers common images; `--entrypoint NAME=...` (or the
//! `supervisor/entrypoints` annotation) covers the rest. docs/kubectl-supervise.md lists it,
//! and a test keeps the two in step.

/// An image's exec-form ENTRYPOINT and CMD, and the SUPERVISOR_* variables it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownImage {
    /// A name pattern: `*` matches any run of characters. Matched against the reference with
    /// `docker.io/` and `library/` removed.
    pub pattern: &'static str,
    pub entrypoint: &'static [&'static str],
    pub cmd: &'static [&'static str],
    pub env: &'static [(&'static str, &'static str)],
}

/// The table; the first match wins.
pub const KNOWN_IMAGES: &[KnownImage] = &[
    // The images docker/ builds (any registry): supervisor baked in as the ENTRYPOINT.
    KnownImage {
        pattern: "*/dind-supervised:*",
        entrypoint: &[
            "/usr/local/bin/supervisor",
            "sidecar",
            "--",
            "dockerd-entrypoint.sh",
        ],
        cmd: &[],
        env: &[("SUPERVISOR_GRACE", "20s")],
    },
    KnownImage {
        pattern: "*/ci-agent:*",
        entrypoint: &["/usr/local/bin/supervisor", "main", "--"],
        cmd: &["docker", "version"],
        env: &[("SUPERVISOR_WAIT_TIMEOUT", "2m")],
    },
    KnownImage {
        pattern: "*/kubectl-supervise:*",
        entrypoint: &["/usr/local/bin/kubectl-supervise", "webhook"],
        cmd: &["--cert=/tls/tls.crt", "--key=/tls/tls.key"],
        env: &[],
    },
    KnownImage {
        pattern: "*/supervisor:*",
        entrypoint: &["/usr/local/bin/supervisor"],
        cmd: &["--help"],
        env: &[],
    },
    KnownImage {
        pattern: "docker:*dind*",
        entrypoint: &["dockerd-entrypoint.sh"],
        cmd: &[],
        env: &[],
    },
    KnownImage {
        pattern: "docker:*",
        entrypoint: &["docker-entrypoint.sh"],
        cmd: &["sh"],
        env: &[],
    },
    KnownImage {
        pattern: "redis:*",
        entrypoint: &["docker-entrypoint.sh"],
        cmd: &["redis-server"],
        env: &[],
    },
    KnownImage {
        pattern: "postgres:*",
        entrypoint: &["docker-entrypoint.sh"],
        cmd: &["postgres"],
        env: &[],
    },
    KnownImage {
        pattern: "nginx:*",
        entrypoint: &["/docker-entrypoint.sh"],
        cmd: &["nginx", "-g", "daemon off;"],
        env: &[],
    },
    KnownImage {
        pattern: "gcr.io/cloud-sql-connectors/cloud-sql-proxy:*",
        entrypoint: &["/cloud-sql-proxy"],
        cmd: &[],
        env: &[],
    },
    KnownImage {
        pattern: "busybox*",
        entrypoint: &[],
        cmd: &["sh"],
        env: &[],
    },
    KnownImage {
        pattern: "alpine*",
        entrypoint: &[],
        cmd: &["/bin/sh"],
        env: &[],
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

/// The endpoints an image serves.
pub fn endpoints(image: &str) -> impl Iterator<Item = &'static Endpoint> {
    let name = normalize(image).to_string();
    ENDPOINTS.iter().filter(move |e| matches(e.pattern, &name))
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
            known("docker:27-dind").map(|k| k.entrypoint),
            Some(&["dockerd-entrypoint.sh"][..])
        );
        assert!(known("example.org/app:1").is_none());
    }
}

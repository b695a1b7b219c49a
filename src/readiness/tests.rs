use super::*;
use std::ffi::OsString;

#[test]
fn parse_targets() {
    assert_eq!(
        "file:/shared/ready".parse::<Target>(),
        Ok(Target::File("/shared/ready".into()))
    );
    assert_eq!(
        "unix:///var/run/docker.sock".parse::<Target>(),
        Ok(Target::Unix("/var/run/docker.sock".into()))
    );
    match "tcp://127.0.0.1:6379".parse::<Target>() {
        Ok(Target::Tcp { host, port, .. }) => {
            assert_eq!((host.as_str(), port), ("127.0.0.1", 6379))
        }
        other => panic!("{other:?}"),
    }
    match "tcp://[::1]:80".parse::<Target>() {
        Ok(Target::Tcp { host, port, .. }) => assert_eq!((host.as_str(), port), ("::1", 80)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        "http://localhost:8080/healthz".parse::<Target>(),
        Ok(Target::Http(_))
    ));
    for bad in [
        "gopher://x",
        "file:",
        "unix:",
        "tcp://host",
        "tcp://:80",
        "tcp://host:0",
        "tcp://host:99999",
        "https://x/",
        "localhost:80",
        "",
    ] {
        let e = bad.parse::<Target>().unwrap_err();
        assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
    }
    assert_eq!(
        "tcp://db:5432".parse::<Target>().unwrap().to_string(),
        "tcp://db:5432"
    );
    // Found by fuzzing: printing must not lose a `//` that belongs to the path.
    for s in ["unix:////run/x.sock", "file:////a", "file://b", "unix:/c"] {
        let t = s.parse::<Target>().unwrap();
        assert_eq!(t.to_string().parse::<Target>(), Ok(t), "{s}");
    }
}

#[test]
fn http_over_a_unix_socket() {
    assert_eq!(
        "http+unix:/var/run/docker.sock:/_ping".parse::<Target>(),
        Ok(Target::HttpUnix {
            socket: "/var/run/docker.sock".into(),
            path: "/_ping".into()
        })
    );
    // Split at the last `:/`: the socket's path may hold one, the URL's may not.
    assert_eq!(
        "http+unix:/run/a:/b.sock:/v1/ready?x=1#frag".parse::<Target>(),
        Ok(Target::HttpUnix {
            socket: "/run/a:/b.sock".into(),
            path: "/v1/ready?x=1".into()
        })
    );
    for s in [
        "http+unix:/var/run/docker.sock:/_ping",
        "http+unix:///x.sock:/",
        "http+unix:rel.sock:/a",
    ] {
        let t = s.parse::<Target>().unwrap();
        assert_eq!(t.to_string(), s);
        assert_eq!(t.to_string().parse::<Target>(), Ok(t), "{s}");
    }
    let long = format!("http+unix:/{}:/_ping", "a".repeat(108));
    for bad in [
        "http+unix:",
        "http+unix:/var/run/docker.sock",
        "http+unix:/var/run/docker.sock/_ping",
        "http+unix::/_ping",
        "http+unix:/s.sock:/a b",
        "http+unix:/s.sock:/a\n",
        long.as_str(),
    ] {
        let e = bad.parse::<Target>().unwrap_err();
        assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
    }
    assert!(
        long.parse::<Target>()
            .unwrap_err()
            .to_string()
            .contains("at most 108")
    );
}

#[test]
fn socket_paths_fit_a_socket_address() {
    let fits = format!("unix:/{}", "a".repeat(107));
    assert!(fits.parse::<Target>().is_ok());
    let long = format!("unix:/{}", "a".repeat(108));
    let e = long.parse::<Target>().unwrap_err().to_string();
    assert!(
        e.contains("109 bytes long") && e.contains("at most 108"),
        "{e}"
    );
    assert!("unix:/a\0b".parse::<Target>().is_err());
    // Found by fuzzing: a newline in a socket's path went into the start-up log line.
    for bad in ["unix:/a\nb", "http+unix:/a\rb:/x", "docker:unix:/a\nb"] {
        let e = bad.parse::<Target>().unwrap_err().to_string();
        assert!(e.contains("control character") && !e.contains('\n'), "{e}");
    }
    let env = DockerEnv::from_env(&|k| (k == "DOCKER_TLS_CERTDIR").then(|| "/c\nd".into()));
    match Target::parse_with("docker", &env) {
        Ok(Target::Docker(d)) => {
            assert!(d.describe().contains("/c\\nd/client"), "{}", d.describe())
        }
        other => panic!("{other:?}"),
    }
}

fn env(vars: &[(&str, &str)]) -> DockerEnv {
    let vars: Vec<(String, OsString)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    DockerEnv::from_env(&|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

fn docker(s: &str, vars: &[(&str, &str)]) -> Docker {
    match Target::parse_with(s, &env(vars)) {
        Ok(Target::Docker(d)) => d,
        other => panic!("{s} {vars:?}: {other:?}"),
    }
}

#[test]
fn docker_preset_endpoints() {
    // The default, DOCKER_HOST, and the argument, which wins.
    let d = docker("docker", &[]);
    assert_eq!(d.to_string(), "docker:unix:///var/run/docker.sock");
    assert_eq!(d.probe.to_string(), "http+unix:/var/run/docker.sock:/_ping");
    assert_eq!(d.certs, None);
    assert!(d.describe().contains("the default"), "{}", d.describe());
    let d = docker("docker", &[("DOCKER_HOST", "unix:/run/d.sock")]);
    assert_eq!(d.probe.to_string(), "http+unix:/run/d.sock:/_ping");
    assert!(
        d.describe().contains("from DOCKER_HOST"),
        "{}",
        d.describe()
    );
    let d = docker(
        "Docker:tcp://[::1]",
        &[("DOCKER_HOST", "unix:///ignored.sock")],
    );
    assert_eq!(d.to_string(), "docker:tcp://[::1]:2375");
    assert_eq!(d.probe.to_string(), "http://[::1]:2375/_ping");
    let d = docker("docker:tcp://Dind:2375/", &[]);
    assert_eq!(d.probe.to_string(), "http://dind:2375/_ping");
    // An empty DOCKER_HOST is unset, as for the docker client.
    assert_eq!(
        docker("docker", &[("DOCKER_HOST", "")]),
        docker("docker", &[])
    );
}

#[test]
fn docker_preset_with_tls() {
    let certdir = [("DOCKER_TLS_CERTDIR", "/certs")];
    // The socket still answers /_ping; the certificates are waited for as well.
    let d = docker("docker", &certdir);
    assert_eq!(d.probe.to_string(), "http+unix:/var/run/docker.sock:/_ping");
    assert_eq!(d.certs, Some("/certs/client".into()));
    assert!(
        d.describe().ends_with(
            "then non-empty /certs/client/{ca,cert,key}.pem (DOCKER_TLS_CERTDIR=/certs)"
        ),
        "{}",
        d.describe()
    );
    // Over TCP with TLS, accepting is enough (no TLS here); the default port is 2376.
    let d = docker(
        "docker",
        &[
            ("DOCKER_HOST", "tcp://docker"),
            ("DOCKER_TLS_CERTDIR", "/certs"),
        ],
    );
    assert_eq!(d.to_string(), "docker:tcp://docker:2376");
    assert!(matches!(*d.probe, Target::Tcp { port: 2376, .. }));
    assert!(d.describe().contains("TLS: the port accepting is enough"));
    // DOCKER_TLS_VERIFY alone: TLS, and DOCKER_CERT_PATH names the client's certificates.
    let d = docker(
        "docker:tcp://127.0.0.1:2376",
        &[
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/home/ci/.docker"),
        ],
    );
    assert!(matches!(*d.probe, Target::Tcp { .. }));
    assert_eq!(d.certs, Some("/home/ci/.docker".into()));
    let d = docker("docker:tcp://127.0.0.1:2376", &[("DOCKER_TLS_VERIFY", "1")]);
    assert_eq!(
        d.certs, None,
        "no directory known: the client's own default"
    );
    // DOCKER_CERT_PATH without TLS in effect changes nothing.
    assert_eq!(
        docker("docker", &[("DOCKER_CERT_PATH", "/c")]),
        docker("docker", &[])
    );
}

#[test]
fn docker_preset_errors_name_the_value_and_its_variable() {
    let e =
        |s: &str, vars: &[(&str, &str)]| Target::parse_with(s, &env(vars)).unwrap_err().to_string();
    assert_eq!(
        e("docker", &[("DOCKER_HOST", "ssh://me@host")]),
        "invalid target \"docker\": DOCKER_HOST \"ssh://me@host\": not unix:///PATH or \
         tcp://HOST:PORT"
    );
    assert_eq!(
        e("docker:npipe:////./pipe/docker", &[]),
        "invalid target \"docker:npipe:////./pipe/docker\": ENDPOINT \
         \"npipe:////./pipe/docker\": not unix:///PATH or tcp://HOST:PORT"
    );
    for bad in [
        "docker:",
        "docker:unix://",
        "docker:tcp://",
        "docker:tcp://h:0",
        "dockerd",
    ] {
        assert!(Target::parse_with(bad, &env(&[])).is_err(), "{bad}");
    }
}

#[test]
fn docker_preset_prints_back_as_itself_in_the_same_environment() {
    for vars in [
        &[][..],
        &[("DOCKER_TLS_CERTDIR", "/certs")],
        &[
            ("DOCKER_HOST", "tcp://10.0.0.2:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
        ],
    ] {
        for s in [
            "docker",
            "docker:unix:/x.sock",
            "docker:tcp://h",
            "docker:unix://rel",
        ] {
            let t = Target::parse_with(s, &env(vars)).unwrap();
            let back = Target::parse_with(&t.to_string(), &env(vars));
            assert_eq!(back.as_ref(), Ok(&t), "{s} {vars:?}");
        }
    }
}

#[test]
fn backoff_is_capped() {
    let mut d = BACKOFF_START;
    let mut seen = vec![d];
    for _ in 0..10 {
        d = next_backoff(d);
        seen.push(d);
    }
    assert_eq!(seen[1], Duration::from_millis(20));
    assert_eq!(*seen.last().unwrap(), Duration::from_millis(100));
}

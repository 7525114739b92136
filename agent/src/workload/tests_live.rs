//! The attributor against real peers: procfs of this machine with a Python TCP server in its
//! own process, and a fake Kubernetes API server (an HTTP server on a test thread that checks
//! the field selector and the bearer token). The binary end to end is `agent/tests/workload.rs`.

use super::config::{K8sConfig, ProcConfig, WorkloadConfig};
use super::Attributor;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Python process listening on 127.0.0.1 (dual-stack `::` when `v6`), accepting and holding
/// connections; prints its port.
struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start(bind: &str) -> PyServer {
        let family = if bind.contains(':') { "AF_INET6" } else { "AF_INET" };
        let code = format!(
            "import socket,sys,time\ns=socket.socket(socket.{family})\ns.bind(('{bind}',0))\ns.listen(16)\nprint(s.getsockname()[1],flush=True)\nkeep=[]\nwhile True:\n  c,_=s.accept()\n  keep.append(c)\n"
        );
        let mut child = Command::new("python3").args(["-c", &code]).stdout(Stdio::piped()).spawn().expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
        PyServer { port: line.trim().parse().expect("port number"), child }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn procfs_cfg() -> WorkloadConfig {
    WorkloadConfig {
        procfs: Some(ProcConfig {
            root: PathBuf::from("/proc"),
            interval: Duration::from_secs(30),
            min_interval: Duration::from_millis(50),
            max_sockets: 1 << 20,
        }),
        k8s: None,
        max_registered: 16,
        register_ttl: Duration::from_secs(60),
    }
}

fn eventually<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn procfs_finds_the_server_process_after_a_miss() {
    // The attributor starts first: the server's sockets appear through a miss-driven rescan.
    let a = Attributor::start(procfs_cfg()).expect("start");
    let server = PyServer::start("127.0.0.1");
    let conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let (client, srv) = (conn.local_addr().expect("local"), conn.peer_addr().expect("peer"));
    let w = eventually(Duration::from_secs(5), || a.lookup(client, srv).filter(|w| w.pid == Some(server.child.id())))
        .unwrap_or_else(|| panic!("no python pid for {client} → {srv}: {:?} {:?}", a.lookup(client, srv), a.stats()));
    assert!(w.process_name.as_deref().is_some_and(|n| n.starts_with("python")), "{w:?}");
    assert!(w.pod.is_none(), "no pods outside Kubernetes");
    let st = a.stats();
    assert!(st.rescans >= 2 && st.rescan_requests >= 1 && st.lookups_process >= 1, "{st:?}");
    // The listening socket answers for a connection procfs has not seen (accepted later, or
    // already closed when its exchange is reported).
    let w = a.lookup("127.0.0.1:1".parse().expect("addr"), srv).expect("listener");
    assert_eq!(w.pid, Some(server.child.id()));
}

#[test]
fn procfs_dual_stack_listener_answers_ipv4() {
    let server = PyServer::start("::");
    let conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let a = Attributor::start(procfs_cfg()).expect("start");
    let (client, srv) = (conn.local_addr().expect("local"), conn.peer_addr().expect("peer"));
    let w = eventually(Duration::from_secs(5), || a.lookup(client, srv).filter(|w| w.pid == Some(server.child.id())))
        .expect("python via tcp6");
    assert!(w.process_name.as_deref().is_some_and(|n| n.starts_with("python")), "{w:?}");
    // The same connection as IPv4-mapped IPv6 addresses.
    let mapped = |s: SocketAddr| -> SocketAddr { format!("[::ffff:{}]:{}", s.ip(), s.port()).parse().expect("mapped") };
    assert_eq!(a.lookup(mapped(client), mapped(srv)).and_then(|w| w.pid), Some(server.child.id()));
}

/// The fake API server: `GET /api/v1/pods?fieldSelector=spec.nodeName=n1` with `Bearer good`.
struct FakeApi {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

const PODS: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[
  {"metadata":{"name":"web-1","namespace":"shop","uid":"7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d","labels":{"app":"web"}},
   "spec":{"nodeName":"n1"},"status":{"phase":"Running","podIP":"10.99.0.5","podIPs":[{"ip":"10.99.0.5"}]}},
  {"metadata":{"name":"proxy","namespace":"kube-system","uid":"11111111-2222-3333-4444-555555555555"},
   "spec":{"nodeName":"n1","hostNetwork":true},"status":{"phase":"Running","podIP":"10.99.0.1"}}]}"#;

impl FakeApi {
    fn start() -> FakeApi {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let n = Arc::clone(&requests);
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                n.fetch_add(1, Ordering::Relaxed);
                let _ = serve(s);
            }
        });
        FakeApi { addr, requests }
    }
}

fn serve(mut s: TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let target = head.split_whitespace().nth(1).unwrap_or_default().replace("%3d", "=");
    let (status, body) = if !head.contains("\r\nauthorization: bearer good\r\n") {
        ("401 Unauthorized", r#"{"kind":"Status","code":401}"#)
    } else if !target.starts_with("/api/v1/pods?") || !target.contains("fieldselector=spec.nodename=n1") {
        ("400 Bad Request", r#"{"kind":"Status","code":400}"#)
    } else {
        ("200 OK", PODS)
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn k8s_cfg(api: &str, token: &str, procfs: bool) -> WorkloadConfig {
    let dir = std::env::temp_dir().join(format!("akto-tap-workload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let token_file = dir.join(format!("token-{token}"));
    std::fs::write(&token_file, format!("{token}\n")).expect("token");
    WorkloadConfig {
        k8s: Some(K8sConfig {
            api: api.into(),
            token_file: Some(token_file),
            ca_file: None,
            node: "n1".into(),
            refresh: Duration::from_millis(100),
            max_pods: 100,
            timeout: Duration::from_secs(2),
        }),
        ..if procfs { procfs_cfg() } else { WorkloadConfig { procfs: None, ..procfs_cfg() } }
    }
}

#[test]
fn pods_from_a_fake_api_server_by_ip() {
    let api = FakeApi::start();
    let a = Attributor::start(k8s_cfg(&format!("http://{}", api.addr), "good", false)).expect("start");
    let (client, server): (SocketAddr, SocketAddr) =
        ("192.0.2.7:40000".parse().expect("a"), "10.99.0.5:8080".parse().expect("a"));
    let w = eventually(Duration::from_secs(5), || a.lookup(client, server)).expect("pod by IP");
    let pod = w.pod.expect("pod");
    assert_eq!((pod.namespace.as_str(), pod.name.as_str(), pod.node.as_deref()), ("shop", "web-1", Some("n1")));
    assert_eq!(pod.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(w.pid, None);
    // A hostNetwork pod's IP (the node's) attributes nothing.
    assert_eq!(a.lookup(client, "10.99.0.1:80".parse().expect("a")), None);
    let st = a.stats();
    assert!(st.k8s_refreshes >= 1 && st.k8s_up == 1 && st.pods == 2 && st.k8s_errors_total() == 0, "{st:?}");
    assert!(api.requests.load(Ordering::Relaxed) >= 1);
}

#[test]
fn bad_token_and_dead_api_server_are_counted_not_fatal() {
    let api = FakeApi::start();
    let a = Attributor::start(k8s_cfg(&format!("http://{}", api.addr), "bad", false)).expect("start");
    let denied = eventually(Duration::from_secs(5), || {
        let st = a.stats();
        (st.k8s_errors.iter().any(|(r, n)| *r == "denied" && *n >= 2)).then_some(st)
    })
    .expect("401s counted");
    assert_eq!((denied.k8s_up, denied.pods), (0, 0));
    assert_eq!(a.lookup("192.0.2.7:1".parse().expect("a"), "10.99.0.5:80".parse().expect("a")), None);

    // Nothing listens there: unreachable, and process attribution still works.
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let server = PyServer::start("127.0.0.1");
    let a = Attributor::start(k8s_cfg(&format!("http://{dead}"), "good", true)).expect("start");
    let conn = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let (client, srv) = (conn.local_addr().expect("l"), conn.peer_addr().expect("p"));
    let w = eventually(Duration::from_secs(5), || a.lookup(client, srv).filter(|w| w.pid.is_some())).expect("process");
    assert_eq!((w.pid, w.pod), (Some(server.child.id()), None));
    let st = eventually(Duration::from_secs(5), || {
        Some(a.stats()).filter(|s| s.k8s_errors.iter().any(|(r, n)| *r == "unreachable" && *n >= 1))
    })
    .expect("unreachable counted");
    assert_eq!(st.k8s_up, 0);
}

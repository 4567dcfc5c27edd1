//! The accept loop through real sockets on loopback, with limits small enough to see in a
//! moment: what happens at the connection limit, and when connections go quiet.

use std::time::{Duration, Instant};

use axum::{Router, routing::get};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

use super::*;

/// The accept loop on a free loopback port with `limits`, stopped when the sender is dropped.
async fn start(limits: Limits) -> (SocketAddr, oneshot::Sender<()>) {
    let app = Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            "slow"
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(run(app, listener, async move { drop(stopped.await) }, limits));
    (addr, stop)
}

fn limits(max_connections: usize, header_timeout: Duration) -> Limits {
    Limits { max_connections, header_timeout, ..Limits::default() }
}

/// One request on `stream`, and the answer's status line and body (the answers here are
/// small and carry a Content-Length).
async fn ask(stream: &mut TcpStream, path: &str) -> String {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before the answer was complete: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                .and_then(|l| l.trim().parse::<usize>().ok())
                .expect("a Content-Length");
            if body.len() >= length {
                return format!("{} {body}", head.lines().next().unwrap_or_default());
            }
        }
    }
}

/// Whether the server has closed `stream`, waiting up to `within` to see it.
async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(n)) => panic!("unexpected bytes: {}", String::from_utf8_lossy(&buf[..n])),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_make_room_and_the_health_check_gets_in_at_once() {
    let (addr, _stop) = start(limits(8, Duration::from_secs(30))).await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let started = Instant::now();
    let mut health = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut health, "/healthz").await, "HTTP/1.1 200 OK ok");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let mut still_open = 0;
    for s in &mut idle {
        still_open += usize::from(!closed(s, Duration::from_millis(20)).await);
    }
    assert!(still_open < 8, "{still_open} idle connections still open beside the health check's");
    // The oldest went first: the newest are the ones left.
    assert!(!closed(idle.last_mut().expect("one"), Duration::from_millis(20)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_connections_are_never_closed_to_make_room_and_a_new_one_waits_for_a_place() {
    let (addr, _stop) = start(limits(2, Duration::from_secs(30))).await;
    let slow = |addr| async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        ask(&mut s, "/slow").await
    };
    let (a, b) = (tokio::spawn(slow(addr)), tokio::spawn(slow(addr)));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    let mut health = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut health, "/healthz").await, "HTTP/1.1 200 OK ok");
    assert!(started.elapsed() >= Duration::from_millis(300), "answered in {:?}, beside two busy", started.elapsed());
    assert_eq!(a.await.expect("task"), "HTTP/1.1 200 OK slow");
    assert_eq!(b.await.expect("task"), "HTTP/1.1 200 OK slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_connections_are_closed_at_the_header_timeout_answered_or_not() {
    let (addr, _stop) = start(limits(8, Duration::from_millis(300))).await;
    let mut kept_alive = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut kept_alive, "/healthz").await, "HTTP/1.1 200 OK ok");
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut halfway = TcpStream::connect(addr).await.expect("connect");
    halfway.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").await.expect("write");
    for (what, s) in [("kept alive", &mut kept_alive), ("silent", &mut silent), ("halfway", &mut halfway)] {
        assert!(closed(s, Duration::from_secs(3)).await, "a {what} connection is still open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_the_limit_get_431() {
    let (addr, _stop) = start(Limits::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n", "a".repeat(200 * 1024));
    // The server may stop reading, and close, before all of it is written.
    let _ = s.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    let mut fine = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(ask(&mut fine, "/healthz").await, "HTTP/1.1 200 OK ok");
}

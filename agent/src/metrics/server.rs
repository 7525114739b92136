//! The metrics endpoint: `GET /metrics`, `GET /healthz` (liveness: the main loop is turning),
//! `GET /readyz` (readiness: started and able to deliver), on its own thread and runtime so a
//! slow scrape never touches the capture path.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Renders the metrics at scrape time.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// What `/healthz` and `/readyz` answer from.
#[derive(Debug)]
pub struct Health {
    start: Instant,
    /// Milliseconds since `start` of the last heartbeat.
    beat_ms: AtomicU64,
    ready: AtomicBool,
    not_ready: Mutex<String>,
    /// A heartbeat older than this fails `/healthz`; `None` for commands whose liveness is the
    /// server answering at all (ingest).
    stale_after: Option<Duration>,
}

impl Health {
    /// Not ready, alive.
    pub fn new(stale_after: Option<Duration>) -> Arc<Health> {
        Arc::new(Health {
            start: Instant::now(),
            beat_ms: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            not_ready: Mutex::new("starting".into()),
            stale_after,
        })
    }

    /// The main loop is alive.
    pub fn beat(&self) {
        self.beat_ms.store(self.start.elapsed().as_millis() as u64, Relaxed);
    }

    /// Ready, or not with a reason.
    pub fn set_ready(&self, ready: Result<(), String>) {
        match ready {
            Ok(()) => self.ready.store(true, Relaxed),
            Err(why) => {
                if let Ok(mut r) = self.not_ready.lock() {
                    *r = why;
                }
                self.ready.store(false, Relaxed);
            }
        }
    }

    fn alive(&self) -> Result<(), String> {
        let Some(stale_after) = self.stale_after else { return Ok(()) };
        let age = self.start.elapsed().saturating_sub(Duration::from_millis(self.beat_ms.load(Relaxed)));
        if age > stale_after {
            return Err(format!("main loop silent for {:.1}s", age.as_secs_f64()));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct AppState {
    render: Render,
    health: Arc<Health>,
}

async fn metrics(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], (s.render)()).into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.health.alive() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    if let Err(why) = s.health.alive() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response();
    }
    if s.health.ready.load(Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = s.health.not_ready.lock().map(|r| r.clone()).unwrap_or_default();
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response()
    }
}

/// The running endpoint; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` now (so a bad address fails start-up) and serves on a thread.
    pub fn start(addr: SocketAddr, render: Render, health: Arc<Health>) -> anyhow::Result<MetricsServer> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| anyhow::anyhow!("metrics: cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(AppState { render, health });
        let thread = std::thread::Builder::new().name("akto-tap-metrics".into()).spawn(move || {
            rt.block_on(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await;
            });
        })?;
        tracing::info!(%addr, "metrics on http://{addr}/metrics (also /healthz, /readyz)");
        Ok(MetricsServer { stop: Some(tx), thread: Some(thread) })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

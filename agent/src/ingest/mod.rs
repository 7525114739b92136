//! `akto-tap ingest`: Akto's data-ingestion contract (`POST /api/ingestData`,
//! `GET /healthCheck`) in front of the Kafka sink, so the edge worker — and anything that speaks
//! the contract — feeds the same pipeline as packet capture.
//!
//! Bounded: request bodies (`--max-body-bytes`), records per batch, field sizes, and the wait
//! for room in the sink's queue (`--handoff-timeout-ms`, then 503). On SIGINT/SIGTERM the
//! server stops accepting connections, finishes the requests in progress, and the sink
//! delivers what it holds (or spools it) before the process exits.

pub mod config;
pub mod server;
pub mod validate;

pub use config::IngestArgs;

use crate::kafka;
use anyhow::Context;
use std::sync::Arc;

/// Runs the server until SIGINT/SIGTERM.
pub fn run(args: &IngestArgs) -> anyhow::Result<()> {
    crate::logging::init(&args.log)?;
    let cfg = Arc::new(args.server_config()?);
    let kafka_cfg = args
        .kafka
        .resolve(&kafka::config::ProcessEnv)
        .context("Kafka configuration")?
        .context("ingest needs Kafka: pass --kafka-brokers HOST:PORT (or set AKTO_KAFKA_BROKER_MAL)")?;
    let sink = kafka::start(kafka_cfg).context("starting the Kafka sink")?;
    let sender = sink.sender().context("the Kafka sink is closed")?;
    let api = Arc::new(server::ApiStats::default());
    let health = crate::metrics::server::Health::new(None);
    let _metrics = match args.metrics_listen {
        Some(addr) => {
            let (api, sink_stats) = (Arc::clone(&api), sink.stats());
            let render: crate::metrics::server::Render = Arc::new(move || {
                let mut m = crate::metrics::MetricSet::new();
                m.gauge("up", "1 while the agent runs.", &[("command", "ingest")], 1.0);
                api.add_metrics(&mut m);
                crate::metrics::add_kafka(&mut m, &sink_stats.snapshot());
                m.render()
            });
            Some(crate::metrics::server::MetricsServer::start(addr, render, Arc::clone(&health))?)
        }
        None => None,
    };
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")?;
    let served = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let addr = listener.local_addr().context("local address")?;
        eprintln!("akto-tap ingest: listening on http://{addr}");
        health.beat();
        health.set_ready(Ok(()));
        let app = server::router(Arc::clone(&cfg), sender, sink.stats(), Arc::clone(&api));
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("HTTP server")
    });
    drop(rt);
    eprintln!("akto-tap ingest: shutting down; flushing the Kafka sink");
    let report = sink.close().context("Kafka sink")?;
    eprintln!("{}", kafka::summary_line(&report));
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

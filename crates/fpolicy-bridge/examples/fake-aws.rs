//! A local SQS/EventBridge-compatible endpoint that accepts everything at
//! once, for `scripts/bench-cloud.sh` (moto is far too slow to measure
//! against). Prints accepted entries per second.
//!
//! Usage: fake-aws [ADDR:PORT]   (default 127.0.0.1:4599)

#[path = "../tests/support/fake_aws.rs"]
mod fake_aws;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4599".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let fake = Arc::new(fake_aws::FakeAws::default());
    eprintln!("fake-aws: listening on {addr}");
    let stats = fake.clone();
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            let now = stats.accepted.load(Relaxed);
            eprintln!(
                "fake-aws: {now} entries ({:.0}/s over the last 5 s), {} calls",
                (now - last) as f64 / 5.0,
                stats.calls.load(Relaxed)
            );
            last = now;
        }
    });
    fake.serve(listener).await;
    Ok(())
}

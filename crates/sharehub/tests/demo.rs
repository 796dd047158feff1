//! `sharehub demo --exit` end to end: the built binary imports Chinook,
//! receives its webhooks and verifies every invoice, in a temp directory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above the demo's few seconds, far below a hung CI job.
const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn the_demo_imports_chinook_and_every_invoice_total_matches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sharehub"))
        .args(["demo", "--exit", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sharehub binary");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("the demo did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("read the demo's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(status.success(), "the demo failed ({status})\n{stdout}\n{stderr}");
    assert!(stdout.contains("412 invoices: totals match their lines to the cent"), "{stdout}");
    assert!(stdout.contains("3992 records in"), "{stdout}");
    assert!(stdout.contains(", 0 errors"), "{stdout}");
    assert!(stdout.contains("3992 distinct of 3992 imported"), "{stdout}");
    assert!(stdout.contains("all signatures valid"), "{stdout}");
    assert!(dir.path().join("sharehub-demo.db").exists(), "the demo database is in the current directory");
    // The store was closed: its write-ahead log is folded back and removed.
    for leftover in ["sharehub-demo.db-wal", "sharehub-demo.db-shm"] {
        assert!(!dir.path().join(leftover).exists(), "{leftover} is left after the demo exits");
    }
}

//! `sharehub demo --exit` end to end: the built binary imports Chinook,
//! receives its webhooks and verifies every invoice, in a temp directory.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Far above the demo's few seconds, far below a hung CI job.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `sharehub` with `args` in `dir`; answers its status, stdout and stderr.
fn run_sharehub(dir: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sharehub"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sharehub binary");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sharehub") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("sharehub {args:?} did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("read sharehub's output");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (status, text(&output.stdout), text(&output.stderr))
}

const DEMO: &[&str] = &["demo", "--exit", "--bind", "127.0.0.1:0"];

#[test]
fn the_demo_imports_chinook_and_every_invoice_total_matches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (status, stdout, stderr) = run_sharehub(dir.path(), DEMO);

    assert!(status.success(), "the demo failed ({status})\n{stdout}\n{stderr}");
    assert!(stdout.contains("412 invoices: totals match their lines to the cent"), "{stdout}");
    assert!(stdout.contains("3992 records in"), "{stdout}");
    assert!(stdout.contains(", 0 errors"), "{stdout}");
    assert!(stdout.contains("3992 distinct of 3992 imported"), "{stdout}");
    assert!(stdout.contains("all signatures valid"), "{stdout}");
    // With --exit the hub is gone: no curl commands for it.
    assert!(!stdout.contains("curl "), "{stdout}");
    assert!(dir.path().join("sharehub-demo.db").exists(), "the demo database is in the current directory");
    // The store was closed: its write-ahead log is folded back and removed.
    for leftover in ["sharehub-demo.db-wal", "sharehub-demo.db-shm"] {
        assert!(!dir.path().join(leftover).exists(), "{leftover} is left after the demo exits");
    }

    // A second run starts again from the first run's file.
    let (status, stdout, stderr) = run_sharehub(dir.path(), DEMO);
    assert!(status.success(), "the second demo failed ({status})\n{stdout}\n{stderr}");
    assert!(stdout.contains("3992 distinct of 3992 imported"), "{stdout}");
}

#[test]
fn the_demo_refuses_to_delete_a_file_that_is_not_a_demos() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("real.db").display());
    let (status, _, stderr) = run_sharehub(dir.path(), &["org", "create", "--name", "Acme Ltd", "--database", &url]);
    assert!(status.success(), "{stderr}");
    std::fs::write(dir.path().join("notes.txt"), "not a database").unwrap();

    for file in ["real.db", "notes.txt"] {
        let args = [DEMO, &["--db-file", file]].concat();
        let (status, stdout, stderr) = run_sharehub(dir.path(), &args);
        assert!(!status.success(), "the demo ran over {file}\n{stdout}");
        assert!(stderr.contains("is not a database an earlier demo left"), "{stderr}");
    }

    let (status, stdout, stderr) = run_sharehub(dir.path(), &["org", "list", "--database", &url]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("Acme Ltd"), "the real database is intact: {stdout}");
    assert_eq!(std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(), "not a database");
}

#[test]
fn a_second_demo_leaves_the_database_of_a_running_one_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = Command::new(env!("CARGO_BIN_EXE_sharehub"))
        .args(["demo", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the first demo");
    // Serving (and delivering) once it says so.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(first.stdout.take().unwrap()));
    let serving = lines.by_ref().map_while(Result::ok).any(|line| line.starts_with("Serving on"));
    assert!(serving, "the first demo never served");

    let (status, _, stderr) = run_sharehub(dir.path(), DEMO);
    let _ = first.kill();
    let _ = first.wait();
    assert!(!status.success(), "the second demo ran over the first one's database");
    assert!(stderr.contains("is in use by a running hub"), "{stderr}");
}

//! Real `sharehub serve` processes for the fault tests: started on a free
//! port with settings from the environment, logs to a file, killed on drop.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ADMIN_TOKEN: &str = "fault-test-admin-token";

/// One `sharehub serve` process; killed when dropped.
pub struct Hub {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now: the hub cannot tell us the one it got.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `sharehub serve` on `database_url` with extra `SHAREHUB_*` settings.
pub fn spawn_hub(database_url: &str, log: PathBuf, settings: &[(&str, String)]) -> Hub {
    let port = free_port();
    let out = std::fs::File::create(&log).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sharehub"));
    command
        .arg("serve")
        .env("SHAREHUB_DATABASE_URL", database_url)
        .env("SHAREHUB_BIND", format!("127.0.0.1:{port}"))
        .env("SHAREHUB_ADMIN_TOKEN", ADMIN_TOKEN);
    for (name, value) in settings {
        command.env(name, value);
    }
    let child = command
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("starting sharehub serve");
    Hub { child, base: format!("http://127.0.0.1:{port}"), log }
}

impl Hub {
    /// Waits until `/health/ready` answers 2xx, failing if the process exits.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client.get(format!("{}/health/ready", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            self.assert_alive();
            assert!(Instant::now() < deadline, "hub not ready:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("hub exited with {status}:\n{}", self.logs());
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asks for a graceful shutdown and waits for the process to exit.
    pub async fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(status.success());
        let exit = self.exited().await;
        assert!(exit.success(), "a SIGTERMed hub exits cleanly ({exit}):\n{}", self.logs());
    }

    /// Waits for the process to exit without blocking a runtime thread.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// POSTs to the platform API with the admin token; the answer must be 2xx.
pub async fn admin(client: &reqwest::Client, hub: &Hub, path: &str, body: Value) -> Value {
    let response =
        client.post(format!("{}{path}", hub.base)).bearer_auth(ADMIN_TOKEN).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "POST {path}: {}", response.status());
    response.json().await.unwrap()
}

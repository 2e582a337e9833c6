//! Running the binary in a scratch directory with its own SQLite database.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A scratch directory with its own database, and the binary to run there.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: String,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", dir.path().join("certhook.db").display());
        Env { dir, database_url }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `certhook` command with a clean environment (no stray CERTHOOK_* variables).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_certhook"));
        for (key, _) in std::env::vars() {
            if key.starts_with("CERTHOOK_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir.path()).env("CERTHOOK_DATABASE_URL", &self.database_url).env("RUST_LOG", "warn");
        cmd
    }

    /// Runs `certhook <args>` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run certhook")
    }

    /// Runs `certhook --json <args>`, expects success, and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.command().arg("--json").args(args).output().expect("run certhook");
        assert!(out.status.success(), "certhook {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
    }
}

/// The exit code and stderr of a run that should have failed.
pub fn failure(out: &Output) -> (i32, String) {
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

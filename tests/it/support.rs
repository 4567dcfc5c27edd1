//! A publication in a temporary folder, and the binary run on it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

pub struct Publication {
    pub dir: tempfile::TempDir,
}

impl Publication {
    /// A copy of the sample publication kept at the top of the repository.
    pub fn sample() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for entry in ["gazette.toml", "articles", "subscribers", "templates"] {
            copy(&repo().join(entry), &dir.path().join(entry));
        }
        Self { dir }
    }

    /// An empty folder with this config.
    pub fn with_config(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("gazette.toml"), config).expect("write config");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn gazette(&self, args: &[&str]) -> Run {
        self.gazette_with(args, &[])
    }

    /// With these environment variables set as well.
    pub fn gazette_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Run(self.command(args).envs(env.iter().copied()).output().expect("run gazette"))
    }

    /// The binary on this publication, for a test that runs it its own way.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gazette"));
        command
            .arg("--config")
            .arg(self.path().join("gazette.toml"))
            .args(args)
            .env_remove("GAZETTE_SMTP_URL")
            .env_remove("GAZETTE_IMAP_URL")
            .env_remove("DATABASE_URL")
            .env_remove("GAZETTE_CONFIG")
            .env_remove("GAZETTE_LOG")
            .env_remove("GAZETTE_LOG_FORMAT")
            .env("GAZETTE_SECRET", "test-secret-0123456789abcdef");
        command
    }
}

/// A finished run of the binary.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout(), self.stderr()))
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code(), 0, "gazette failed\nstdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr());
        self
    }
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read_dir") {
            let e = e.expect("entry");
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::copy(from, to).expect("copy");
    }
}

/// A config that reads the given feed files (absolute paths) and nothing else.
pub fn feeds_config(feeds: &[PathBuf], extra: &str) -> String {
    let mut c = String::from(
        "[publication]\nname = \"Test Digest\"\nfrom = \"Test Digest <digest@example.org>\"\nbase_url = \"https://news.example.org\"\ntimezone = \"America/New_York\"\nlists = [\"weekly\"]\n",
    );
    c.push_str(extra);
    for f in feeds {
        c.push_str(&format!("\n[[source]]\nfeed = {:?}\n", f.display().to_string()));
    }
    c
}

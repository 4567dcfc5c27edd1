//! The key that signs subscriber links. It comes from `$GAZETTE_SECRET`; without it, a random
//! key is kept in a file beside the config so that a publication works with no setup and its
//! links stay valid across runs. The key never prints.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretSlice};

/// The file a generated key is kept in, beside `gazette.toml`.
pub const KEY_FILE: &str = ".gazette-secret";

#[derive(Clone)]
pub struct LinkSecret(SecretSlice<u8>);

/// Where the key came from, so a command can say so once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

impl std::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSecret(…)")
    }
}

impl LinkSecret {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// `$GAZETTE_SECRET` if set (at least 16 bytes), else the key file in `folder`, made on
    /// first use with owner-only permissions.
    pub async fn load(env_value: Option<String>, folder: &Path) -> std::io::Result<(Self, SecretSource)> {
        if let Some(v) = env_value.filter(|v| !v.is_empty()) {
            if v.len() < 16 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "GAZETTE_SECRET is shorter than 16 characters; use a long random value (e.g. `openssl rand -hex 32`)",
                ));
            }
            return Ok((Self::from_bytes(v.into_bytes()), SecretSource::Environment));
        }
        let path = folder.join(KEY_FILE);
        match tokio::fs::read(&path).await {
            Ok(bytes) if bytes.len() >= 32 => Ok((Self::from_bytes(bytes), SecretSource::File(path))),
            Ok(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is shorter than 32 bytes; delete it to have a new key made", path.display()),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
                write_private(&path, &bytes).await?;
                Ok((Self::from_bytes(bytes), SecretSource::Generated(path)))
            }
            Err(e) => Err(e),
        }
    }
}

async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    use tokio::io::AsyncWriteExt;
    let mut f = options.open(path).await?;
    f.write_all(bytes).await?;
    f.sync_all().await
}

//! What a process opens before it works on a publication: its store, the transport its mail
//! goes through (with the DKIM key that signs it), and the name its delivery leases carry. The
//! commands, the daemon and the web server start here; none of it is part of an issue's life.

use secrecy::ExposeSecret;

use crate::{
    config::{Config, Transport as TransportSetting},
    deliver::{self, DeliverError, DkimError, Outbox, RelaySettings, Relays, Smtp, SmtpSettings, Transport},
    store::{Store, StoreError, StoreOptions},
};

/// Why something a process needs could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] DeliverError),
    #[error("{0}")]
    Dkim(#[from] DkimError),
}

/// Opens the store `[storage]` names (creating and migrating it when needed).
pub async fn open_store(config: &Config) -> Result<Store, SetupError> {
    let options = StoreOptions { pool_size: config.storage.pool_size };
    Ok(Store::open_with(config.storage.database_url.expose_secret(), options).await?)
}

/// The transport `[delivery]` asks for, with DKIM where `[dkim]` is set.
pub async fn transport(config: &Config) -> Result<Transport, SetupError> {
    let dkim = match &config.dkim {
        Some(d) => Some(deliver::load_dkim(&d.domain, &d.selector, &d.private_key_file).await?),
        None => None,
    };
    let d = &config.delivery;
    Ok(match d.transport {
        TransportSetting::Outbox => {
            Transport::outbox(Outbox::open(&d.outbox).await.map_err(|e| DeliverError::Setup(e.reply))?, dkim)
        }
        TransportSetting::Smtp if !d.relays.is_empty() => {
            let mut relays = Vec::new();
            for r in &d.relays {
                let smtp = Smtp::new(&SmtpSettings {
                    url: r.url.clone(),
                    ca_file: d.ca_file.clone(),
                    timeout: d.timeout.std(),
                    pool_size: u32::try_from(r.concurrency.unwrap_or(d.concurrency)).unwrap_or(u32::MAX),
                })
                .await
                .map_err(|e| DeliverError::Setup(format!("relay {}: {}", r.server, e.reply)))?;
                relays.push(RelaySettings { smtp, weight: r.weight, concurrency: r.concurrency, rate: r.rate });
            }
            Transport::relays(Relays::new(relays).map_err(|e| DeliverError::Setup(e.to_string()))?, dkim)
        }
        TransportSetting::Smtp => {
            let url = d.smtp_url.clone().ok_or_else(|| DeliverError::Setup("delivery.smtp_url is not set".into()))?;
            let smtp = Smtp::new(&SmtpSettings {
                url,
                ca_file: d.ca_file.clone(),
                timeout: d.timeout.std(),
                pool_size: u32::try_from(d.concurrency).unwrap_or(u32::MAX),
            })
            .await
            .map_err(|e| DeliverError::Setup(e.reply))?;
            Transport::smtp(smtp, dkim)
        }
    })
}

/// The name this process's delivery leases carry: the host, the process and a random part, so
/// that two processes never take one another's leases for their own, and the ledger says which
/// machine held one.
pub fn owner() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{:08x}", std::process::id(), rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_differ_between_engines_of_one_process() {
        let (a, b) = (owner(), owner());
        assert_ne!(a, b);
        assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
    }
}

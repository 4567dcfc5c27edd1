//! What every handler shares: the publication (config, templates, signer), the store, the
//! transport that mails confirmations, the clock, the web's templates, the sign-up limiter and
//! the background sender of the web's mail.

use std::sync::Arc;

use super::{
    access::AccessTokens,
    admin::LoginLimits,
    limit::Limiter,
    mail::Postman,
    views::{ViewError, Views},
    webhooks::Webhooks,
};
use crate::{clock::Clock, deliver::Transport, publication::Publication, store::Store};

#[derive(Clone)]
pub struct AppState {
    pub publication: Arc<Publication>,
    pub store: Store,
    pub transport: Arc<Transport>,
    pub clock: Arc<dyn Clock>,
    pub views: Arc<Views>,
    /// Sign-up attempts per client, from `[web] subscribe_rate`.
    pub limiter: Arc<Limiter>,
    pub postman: Postman,
    /// `$GAZETTE_ADMIN_TOKEN` and `$GAZETTE_METRICS_TOKEN`: the admin API answers only
    /// requests that carry the first, `/metrics` those that carry either; without them, none.
    pub tokens: AccessTokens,
    /// The providers' webhooks that are on, with their secrets; none unless set.
    pub webhooks: Arc<Webhooks>,
    /// Sign-in attempts to the dashboard, per client and per address.
    pub logins: Arc<LoginLimits>,
}

impl AppState {
    /// Loads the web's templates (with the publication's overrides) and sets up the rest.
    pub async fn new(
        publication: Arc<Publication>,
        store: Store,
        transport: Arc<Transport>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ViewError> {
        let config = &publication.config;
        let views = Views::load(config.templates_dir.as_deref(), &config.publication).await?;
        let limiter = Limiter::new(config.web.subscribe_rate);
        crate::accounts::warm_up();
        Ok(Self {
            postman: Postman::new(transport.clone()),
            views: Arc::new(views),
            limiter: Arc::new(limiter),
            publication,
            store,
            transport,
            clock,
            tokens: AccessTokens::default(),
            webhooks: Arc::new(Webhooks::default()),
            logins: Arc::new(LoginLimits::default()),
        })
    }

    pub fn with_tokens(mut self, tokens: AccessTokens) -> Self {
        self.tokens = tokens;
        self
    }

    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Self {
        self.webhooks = Arc::new(webhooks);
        self
    }
}

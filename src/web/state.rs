//! What every handler shares: the publication (config, templates, signer), the store, the
//! transport that mails confirmations, and the clock.

use std::sync::Arc;

use crate::{clock::Clock, deliver::Transport, publication::Publication, store::Store};

#[derive(Clone)]
pub struct AppState {
    pub publication: Arc<Publication>,
    pub store: Store,
    pub transport: Arc<Transport>,
    pub clock: Arc<dyn Clock>,
}

//! Steward's one door to personal data. Every read, write, search, export
//! and deletion of CRM data goes through [`Service`]; HTTP handlers, the CLI
//! and jobs are thin adapters over it. This layer, and only this layer,
//! applies authentication results, role and purpose checks, minimisation,
//! the field codec and blind indexes (and, with later issues, audit).

pub mod auth;
pub mod blind;
pub mod codec;
pub mod contacts;
pub mod context;
pub mod crm;
pub mod error;
pub mod keys;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use steward_domain::Inventory;
use steward_store::Store;
use tokio::sync::Semaphore;

pub use auth::Principal;
pub use blind::BlindIndex;
pub use codec::{FieldCodec, PlainCodec};
pub use context::RequestContext;
pub use error::{ServiceError, ServiceResult};
pub use keys::ServiceKeys;

/// Where Steward keeps its state.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/steward.db`.
    pub database_url: Option<String>,
}

impl Config {
    #[must_use]
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("steward.db").display()))
    }

    #[must_use]
    pub fn inventory_path(&self) -> PathBuf {
        self.data_dir.join("inventory.toml")
    }
}

/// Why Steward could not start. Each variant reads as one clear sentence.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Inventory(#[from] steward_domain::InventoryError),
    #[error("cannot open the database: {0}")]
    Store(#[from] steward_store::StoreError),
}

pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) inventory: Arc<Inventory>,
    pub(crate) codec: Arc<dyn FieldCodec>,
    pub(crate) blind: BlindIndex,
    pub(crate) keys: KeysForAuth,
    pub(crate) hash_permits: Semaphore,
}

/// The token-hashing key, kept apart from the index key.
pub(crate) struct KeysForAuth {
    pub token: keys::SecretKey,
}

impl Service {
    /// Opens Steward's state: creates the data dir and missing keys, loads
    /// and validates the inventory, opens and migrates the database.
    pub async fn open(config: &Config) -> Result<Self, OpenError> {
        let url = config.database_url();
        steward_store::check_url(&url)?;
        let inventory = Inventory::load_or_default(&config.inventory_path())?;
        keys::create_private_dir(&config.data_dir)?;
        let keys = ServiceKeys::load_or_create(&config.data_dir)?;
        let store = steward_store::open(&url).await?;
        Ok(Self::new(store, inventory, keys, Arc::new(PlainCodec)))
    }

    #[must_use]
    pub fn new(store: Arc<dyn Store>, inventory: Inventory, keys: ServiceKeys, codec: Arc<dyn FieldCodec>) -> Self {
        let hashers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self {
            store,
            inventory: Arc::new(inventory),
            codec,
            blind: BlindIndex::new(keys.index),
            keys: KeysForAuth { token: keys.token },
            hash_permits: Semaphore::new(hashers),
        }
    }

    #[must_use]
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether the database answers (for `/healthz`).
    pub async fn ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    pub async fn count_users(&self) -> ServiceResult<u64> {
        Ok(self.store.count_users().await?)
    }

    /// Finishes queued writes and closes the database.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// The default data directory, relative to the working directory.
#[must_use]
pub fn default_data_dir() -> &'static Path {
    Path::new("./steward-data")
}

//! Steward's one door to personal data. Every read, write, search, export
//! and deletion of CRM data goes through [`Service`]; HTTP handlers, the CLI
//! and jobs are thin adapters over it. This layer, and only this layer,
//! applies authentication results, role and purpose checks, minimisation,
//! the field codec and blind indexes (and, with later issues, audit).

pub mod admin;
pub mod audit;
pub mod auth;
pub mod compliance;
pub mod compliance_render;
mod compliance_scan;
pub mod consent;
pub mod contacts;
pub mod context;
pub mod crm;
pub mod crypto;
pub mod doctor;
pub mod drp;
pub mod dsr;
pub mod error;
pub mod import;
pub mod incident;
pub mod keys;
pub mod mfa;
pub mod optin;
pub mod outbox;
pub mod retention;
pub mod rotation;
pub mod scim;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use steward_crypto::master::MasterKeySource;
use steward_domain::Inventory;
use steward_store::Store;
use tokio::sync::Semaphore;

pub use auth::Principal;
pub use context::RequestContext;
pub use crypto::{FieldProtection, KeyringError};
pub use error::{ServiceError, ServiceResult};

/// Where Steward keeps its state.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/steward.db`.
    pub database_url: Option<String>,
    /// Where the master key comes from; default `<data_dir>/keys/master.key`.
    pub master_key: Option<MasterKeySource>,
}

impl Config {
    /// A configuration with defaults for everything but the data dir.
    #[must_use]
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            master_key: None,
        }
    }

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

    /// The Ed25519 key that signs audit tree heads: separate from the master key.
    #[must_use]
    pub fn audit_key_path(&self) -> PathBuf {
        keys::keys_dir(&self.data_dir).join("audit-signing.key")
    }

    #[must_use]
    pub fn master_key_source(&self) -> MasterKeySource {
        self.master_key
            .clone()
            .unwrap_or_else(|| MasterKeySource::File(keys::keys_dir(&self.data_dir).join("master.key")))
    }
}

/// Why Steward could not start. Each variant reads as one clear sentence.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data dir {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Keys(#[from] KeyringError),
    #[error(transparent)]
    Inventory(#[from] steward_domain::InventoryError),
    #[error("cannot open the database: {0}")]
    Store(#[from] steward_store::StoreError),
    #[error("{0}")]
    AuditKey(String),
}

pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) inventory: Arc<Inventory>,
    pub(crate) crypto: crypto::Crypto,
    pub(crate) audit: audit::AuditState,
    pub(crate) auth: auth::AuthState,
    pub(crate) public: consent::PublicLimiter,
    pub(crate) hash_permits: Semaphore,
    /// Development only: return double opt-in codes to the caller as well
    /// as e-mailing them (see [`Service::set_development_tokens`]).
    development_tokens: std::sync::atomic::AtomicBool,
    /// Where this service's state lives (for the self-audit).
    pub(crate) config: Config,
    /// The certificate the server serves, when it serves HTTPS.
    pub(crate) tls_cert: std::sync::Mutex<Option<PathBuf>>,
}

/// How a service is opened. The defaults are the only settings for real
/// use; the others exist so the benchmark can measure what each costs.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub protection: FieldProtection,
    /// Record reads in the audit log.
    pub audit_reads: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            protection: FieldProtection::Encrypted,
            audit_reads: true,
        }
    }
}

impl Service {
    /// Opens Steward's state: creates the data dir, loads and validates the
    /// inventory, opens and migrates the database, and loads (on a fresh
    /// database: creates) the keys.
    pub async fn open(config: &Config) -> Result<Self, OpenError> {
        Self::open_with(config, OpenOptions::default()).await
    }

    /// [`Service::open`] with a choice of field protection (the benchmark
    /// compares with and without encryption).
    pub async fn open_with(config: &Config, options: OpenOptions) -> Result<Self, OpenError> {
        let url = config.database_url();
        steward_store::check_url(&url)?;
        let inventory = Inventory::load_or_default(&config.inventory_path())?;
        let private = |dir: &Path| {
            keys::create_private_dir(dir).map_err(|source| OpenError::DataDir {
                path: dir.to_path_buf(),
                source,
            })
        };
        private(&config.data_dir)?;
        private(&keys::keys_dir(&config.data_dir))?;
        let source = config.master_key_source();
        if let MasterKeySource::File(path) = &source {
            if let Some(dir) = path.parent() {
                private(dir)?;
            }
        }
        let store = steward_store::open(&url, &keys::subject_key_vault(&config.data_dir)).await?;
        let crypto = match crypto::Crypto::load(&*store, &source, options.protection).await {
            Ok(c) => c,
            Err(e) => {
                store.close().await;
                return Err(e.into());
            }
        };
        let signing = match steward_audit::SigningKey::load_or_create(&config.audit_key_path()) {
            Ok(k) => k,
            Err(e) => {
                store.close().await;
                return Err(OpenError::AuditKey(e.to_string()));
            }
        };
        let audit = audit::AuditState {
            signing,
            tree: std::sync::Mutex::new(steward_audit::TreeBuilder::new()),
            audit_reads: options.audit_reads,
        };
        let hashers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Ok(Self {
            store,
            inventory: Arc::new(inventory),
            crypto,
            audit,
            auth: auth::AuthState::default(),
            public: consent::PublicLimiter::default(),
            hash_permits: Semaphore::new(hashers),
            development_tokens: std::sync::atomic::AtomicBool::new(false),
            config: config.clone(),
            tls_cert: std::sync::Mutex::new(None),
        })
    }

    /// For development only (`steward serve --dev-return-tokens`): the
    /// one-time codes of double opt-in, which are always e-mailed through
    /// the outbox, are also returned to the caller, so a developer without
    /// a mail relay can confirm. Never in production: whoever submits a
    /// form could then confirm a stranger's consent.
    pub fn set_development_tokens(&self, on: bool) {
        self.development_tokens.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn development_tokens(&self) -> bool {
        self.development_tokens.load(std::sync::atomic::Ordering::Relaxed)
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

    /// What the server does when it stops: sign a final tree head covering
    /// everything it recorded, then close.
    pub async fn shutdown(&self) {
        if let Err(e) = self.sign_tree_head().await {
            tracing::warn!(error = %e, "could not sign a final audit tree head");
        }
        self.close().await;
    }
}

/// The default data directory, relative to the working directory.
#[must_use]
pub fn default_data_dir() -> &'static Path {
    Path::new("./steward-data")
}

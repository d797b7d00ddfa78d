//! The service layer's error: what went wrong, in terms an adapter can map
//! to a status code. Messages never contain personal data.

use steward_domain::FieldError;
use steward_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No credentials, or credentials that are wrong, expired or revoked.
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated but not allowed: role, purpose or lawful basis.
    #[error("{0}")]
    Forbidden(String),
    /// The named kind of record does not exist (or is not visible).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with stored state (duplicate, concurrent change).
    #[error("{0}")]
    Conflict(String),
    /// Invalid or not-minimal input, field by field.
    #[error("the request has invalid fields")]
    Invalid(Vec<FieldError>),
    /// A request that is well-formed but cannot be carried out as asked.
    #[error("{0}")]
    BadRequest(String),
    /// Existed, but no longer available (410).
    #[error("{0}")]
    Gone(String),
    /// The account is locked after repeated failed sign-ins (423).
    #[error("{0}")]
    Locked(String),
    /// Too many attempts from one place (429).
    #[error("{0}")]
    TooManyRequests(String),
    /// Anything unexpected (database down, corrupt data). Logged by id, shown
    /// to clients without detail.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound("record"),
            StoreError::VersionConflict => {
                Self::Conflict("the record was changed by another request; read it again and retry".into())
            }
            StoreError::Duplicate => Self::Conflict("a record with the same unique value already exists".into()),
            StoreError::MissingReference => Self::BadRequest("a referenced record does not exist".into()),
            StoreError::LegalHold => Self::Conflict(
                "the contact's data is under a legal hold; it may not be erased or deleted until the hold is released"
                    .into(),
            ),
            StoreError::Erased { request_id, at } => Self::Conflict(format!(
                "this person's data was erased on {} at their request ({request_id}); do not re-import it without a new lawful basis",
                at.date_naive()
            )),
            StoreError::Corrupt(m) => Self::Internal(format!("corrupt data: {m}")),
            StoreError::Backend(m) => Self::Internal(m),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

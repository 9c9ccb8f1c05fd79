//! The one error type of vibe_ft. Every failure a caller can cause maps to a
//! SQLSTATE that PostgREST turns into a sensible HTTP status (22xxx and 42xxx
//! become 400, 23505 becomes 409); a provider's refusal is 38000; infrastructure
//! failures are XX000.

use crate::core::messages::MessagesError;
use crate::core::status::TransitionError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum VibeError {
    /// A required argument was NULL (22004).
    #[error("{0} must not be NULL")]
    NullArgument(&'static str),
    /// An argument has a value the function does not accept (22023).
    #[error("{0}")]
    InvalidArgument(String),
    /// A number outside its allowed range (22003).
    #[error("{0}")]
    OutOfRange(String),
    /// A dataset or job that does not exist (42704).
    #[error("{0}")]
    NotFound(String),
    /// A malformed `messages` array (22023).
    #[error("invalid {arg}: {source}")]
    Messages { arg: &'static str, source: MessagesError },
    /// A status change the state machine forbids (55000).
    #[error("{0}")]
    Transition(#[from] TransitionError),
    /// An object not in a state that allows the request, e.g. a job of
    /// another installation, or a job that succeeded at the provider (55000).
    #[error("{0}")]
    State(String),
    /// Something already exists that must be unique, e.g. an unfinished job (23505).
    #[error("{0}")]
    Conflict(String),
    /// An optional dependency is missing, e.g. pg_cron (0A000).
    #[error("{message}")]
    Unsupported { message: String, hint: String },
    /// A fine-tuning provider refused or failed a request made for the caller (38000).
    #[error("{0}")]
    Provider(String),
    /// A function that must see what committed while it waited, run in a
    /// REPEATABLE READ or SERIALIZABLE transaction (25000).
    #[error("{0}")]
    WrongIsolation(String),
    /// A bug or an infrastructure failure (XX000).
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, VibeError>;

impl From<pgrx::spi::SpiError> for VibeError {
    fn from(e: pgrx::spi::SpiError) -> Self {
        VibeError::Internal(format!("SPI: {e}"))
    }
}

impl VibeError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            VibeError::NullArgument(_) => ERRCODE_NULL_VALUE_NOT_ALLOWED,
            VibeError::InvalidArgument(_) | VibeError::Messages { .. } => ERRCODE_INVALID_PARAMETER_VALUE,
            VibeError::OutOfRange(_) => ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            VibeError::NotFound(_) => ERRCODE_UNDEFINED_OBJECT,
            VibeError::Transition(_) | VibeError::State(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            VibeError::Conflict(_) => ERRCODE_UNIQUE_VIOLATION,
            VibeError::Unsupported { .. } => ERRCODE_FEATURE_NOT_SUPPORTED,
            VibeError::Provider(_) => ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
            VibeError::WrongIsolation(_) => ERRCODE_INVALID_TRANSACTION_STATE,
            VibeError::Internal(_) => ERRCODE_INTERNAL_ERROR,
        }
    }

    /// Raise this error in Postgres. Never returns.
    #[track_caller]
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(self.sqlstate(), self.to_string(), "vibe_ft");
        if let VibeError::Unsupported { hint, .. } = &self {
            report = report.set_hint(hint.clone());
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR-level report returned")
    }
}

/// `value.or_raise()`: unwrap a vibe_ft result or raise it as a Postgres ERROR.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T, E: Into<VibeError>> OrRaise<T> for std::result::Result<T, E> {
    #[track_caller]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.into().raise(),
        }
    }
}

/// A required argument: `Some(v)` or a NULL-argument error naming it.
pub fn required<T>(value: Option<T>, arg: &'static str) -> Result<T> {
    value.ok_or(VibeError::NullArgument(arg))
}

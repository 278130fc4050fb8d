//! Errors, with ONTAP's own code and message when it sent one.

#[derive(Debug, thiserror::Error)]
pub enum OntapError {
    /// ONTAP answered with an error body: `{"error": {"message", "code"}}`.
    #[error("ONTAP {method} {path}: HTTP {status}, error {code}: {message}")]
    Api {
        method: String,
        path: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("ONTAP {method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    #[error("ONTAP {method} {path}: unexpected response: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },
    #[error("ONTAP configuration: {0}")]
    Config(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{action} failed ({cause}); restored: {restored}")]
    RolledBack {
        action: String,
        cause: Box<OntapError>,
        restored: String,
    },
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },
}

impl OntapError {
    /// ONTAP's error code, when the error came from ONTAP.
    pub fn code(&self) -> Option<&str> {
        match self {
            OntapError::Api { code, .. } => Some(code),
            OntapError::RolledBack { cause, .. } => cause.code(),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            OntapError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

//! What can go wrong in a terminology operation, in the categories the
//! server maps to HTTP status and OperationOutcome (server/src/error.rs).

use fhir::IssueCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400: a malformed or contradictory request.
    Invalid,
    /// 404: the code system, value set or concept map is not known.
    NotFound,
    /// 422: well-formed, but the content cannot be processed (a cyclic
    /// value set, an expansion too large, a malformed load).
    Unprocessable,
    /// 500: a fault of ours (the database).
    Fault,
}

/// An error with the parameter it concerns (`expression`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TermError {
    pub kind: Kind,
    pub code: IssueCode,
    pub message: String,
    /// The offending parameter: `code`, `Parameters.parameter[2]`.
    pub expression: Option<String>,
}

impl TermError {
    pub fn new(kind: Kind, code: IssueCode, message: impl Into<String>) -> TermError {
        TermError {
            kind,
            code,
            message: message.into(),
            expression: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> TermError {
        TermError::new(Kind::Invalid, IssueCode::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> TermError {
        TermError::new(Kind::NotFound, IssueCode::NotFound, message)
    }

    pub fn unprocessable(code: IssueCode, message: impl Into<String>) -> TermError {
        TermError::new(Kind::Unprocessable, code, message)
    }

    pub fn fault(message: impl Into<String>) -> TermError {
        TermError::new(Kind::Fault, IssueCode::Exception, message)
    }

    /// Names the offending parameter (kept if one is already named).
    pub fn at(mut self, expression: impl Into<String>) -> TermError {
        if self.expression.is_none() {
            self.expression = Some(expression.into());
        }
        self
    }
}

impl From<tokio_postgres::Error> for TermError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(code) if *code == SqlState::INVALID_REGULAR_EXPRESSION => {
                TermError::invalid(format!("invalid regular expression: {e}"))
            }
            Some(code)
                if *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::UNIQUE_VIOLATION =>
            {
                TermError::new(
                    Kind::Unprocessable,
                    IssueCode::Conflict,
                    "terminology content was changed concurrently; retry",
                )
            }
            _ => TermError::fault(format!("database: {e:#}")),
        }
    }
}

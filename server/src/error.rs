//! The closed set of error categories and their single mapping to HTTP status
//! and OperationOutcome. Internal faults are logged here, once, and reach the
//! client only as a generic message with a reference id.

use actix_web::http::StatusCode;
use fhir::outcome::operation_outcome;
use fhir::{Issue, IssueCode};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// 400: malformed request or resource failing the base spec's rules.
    Invalid,
    /// 401: missing or bad credentials.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 406: only JSON can be produced.
    NotAcceptable,
    /// 409: version conflict or concurrent modification.
    Conflict,
    /// 410: the resource was deleted.
    Gone,
    /// 412: failed If-Match or ambiguous conditional request.
    PreconditionFailed,
    /// 413
    TooLarge,
    /// 415: only JSON can be read.
    UnsupportedMediaType,
    /// 422: well-formed but violating content or business rules.
    Unprocessable,
    /// 429
    TooManyRequests,
    /// 500: a fault of ours; never a client mistake.
    Fault,
    /// 503
    Unavailable,
}

impl Category {
    pub fn status(self) -> StatusCode {
        match self {
            Category::Invalid => StatusCode::BAD_REQUEST,
            Category::Unauthorized => StatusCode::UNAUTHORIZED,
            Category::Forbidden => StatusCode::FORBIDDEN,
            Category::NotFound => StatusCode::NOT_FOUND,
            Category::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Category::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Category::Conflict => StatusCode::CONFLICT,
            Category::Gone => StatusCode::GONE,
            Category::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Category::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Category::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Category::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Category::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Category::Fault => StatusCode::INTERNAL_SERVER_ERROR,
            Category::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn default_code(self) -> IssueCode {
        match self {
            Category::Invalid => IssueCode::Invalid,
            Category::Unauthorized => IssueCode::Login,
            Category::Forbidden => IssueCode::Forbidden,
            Category::NotFound => IssueCode::NotFound,
            Category::MethodNotAllowed
            | Category::NotAcceptable
            | Category::UnsupportedMediaType => IssueCode::NotSupported,
            Category::Conflict => IssueCode::Conflict,
            Category::Gone => IssueCode::Deleted,
            Category::PreconditionFailed => IssueCode::Conflict,
            Category::TooLarge => IssueCode::TooCostly,
            Category::Unprocessable => IssueCode::Processing,
            Category::TooManyRequests => IssueCode::Throttled,
            Category::Fault => IssueCode::Exception,
            Category::Unavailable => IssueCode::Transient,
        }
    }
}

/// An error on its way to the client: a category and the issues to report.
#[derive(Debug)]
pub struct ApiError {
    pub category: Category,
    pub issues: Vec<Issue>,
}

impl ApiError {
    pub fn new(category: Category, diagnostics: impl Into<String>) -> Self {
        ApiError {
            category,
            issues: vec![Issue::error(category.default_code(), diagnostics)],
        }
    }

    /// Adds the FHIRPath (or parameter) location to the first issue.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        if let Some(first) = self.issues.first_mut() {
            first.expression.push(expression.into());
        }
        self
    }

    pub fn with_code(mut self, code: IssueCode) -> Self {
        if let Some(first) = self.issues.first_mut() {
            first.code = code;
        }
        self
    }

    /// Whether sending the same request again may succeed: the database
    /// was out of reach, or the write lost a deadlock or a serialization
    /// conflict to a concurrent one. Background work retries these rather
    /// than recording the record as refused.
    pub fn is_transient(&self) -> bool {
        self.category == Category::Unavailable
            || self
                .issues
                .first()
                .is_some_and(|issue| issue.code == IssueCode::Transient)
    }

    pub fn from_issues(category: Category, issues: Vec<Issue>) -> Self {
        ApiError { category, issues }
    }

    pub fn invalid(diagnostics: impl Into<String>) -> Self {
        ApiError::new(Category::Invalid, diagnostics)
    }

    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        ApiError::new(Category::NotFound, diagnostics)
    }

    /// An internal fault. The cause is logged with a reference id; the
    /// client sees only the id.
    pub fn fault(cause: impl fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4();
        tracing::error!(%reference, error = %cause, "internal error");
        ApiError::new(
            Category::Fault,
            format!("internal error; reference {reference}"),
        )
    }

    pub fn status(&self) -> StatusCode {
        self.category.status()
    }

    pub fn outcome(&self) -> serde_json::Value {
        operation_outcome(&self.issues)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.issues.first() {
            Some(issue) => write!(f, "{:?}: {}", self.category, issue.diagnostics),
            None => write!(f, "{:?}", self.category),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(code)
                if *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                // 409, with the code that says the same request may
                // succeed when sent again.
                ApiError::new(
                    Category::Conflict,
                    "concurrent modification; retry the request",
                )
                .with_code(IssueCode::Transient)
            }
            Some(code) if *code == SqlState::UNIQUE_VIOLATION => ApiError::new(
                Category::Conflict,
                "the resource was changed concurrently; retry the request",
            ),
            _ => ApiError::fault(format!("database: {e:#}")),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        tracing::error!(error = %e, "database pool");
        ApiError::new(
            Category::Unavailable,
            "the database is unavailable; retry later",
        )
    }
}

impl From<terminology::TermError> for ApiError {
    fn from(e: terminology::TermError) -> Self {
        use terminology::error::Kind;
        if e.kind == Kind::Fault {
            return ApiError::fault(e.message);
        }
        let category = match e.kind {
            Kind::Invalid => Category::Invalid,
            Kind::NotFound => Category::NotFound,
            _ => Category::Unprocessable,
        };
        let mut error = ApiError::new(category, e.message).with_code(e.code);
        if let Some(expression) = e.expression {
            error = error.at(expression);
        }
        error
    }
}

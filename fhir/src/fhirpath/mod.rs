//! FHIRPath (N1, as used by FHIR R4): parse an expression once into an
//! [`Expression`], then [`evaluate`] it against resources. Items borrow the
//! resource JSON; element types (choice elements, `ofType`, `is`, `as`,
//! `type()`) come from the official StructureDefinitions through
//! [`crate::definitions::structure_model`].
//!
//! ```
//! use fhir::fhirpath::{Env, Expression, evaluate};
//! let patient = serde_json::json!({"resourceType": "Patient", "name": [{"family": "Chalmers"}]});
//! let expr = Expression::parse("Patient.name.family").unwrap();
//! let out = evaluate(&expr, &patient, &Env::new()).unwrap();
//! assert_eq!(out[0].as_str(), Some("Chalmers"));
//! assert_eq!(out[0].type_name(), "string");
//! ```

mod check;
mod compare;
mod datetime;
mod decimal;
mod dedup;
mod eval;
mod func_fhir;
mod func_math;
mod func_string;
mod functions;
mod lexer;
mod navigate;
mod operators;
mod parser;
mod single;
mod ucum;
mod value;

#[cfg(test)]
mod tests;

pub use datetime::{PartialDateTime, Precision};
pub use decimal::Decimal;
pub use ucum::Quantity;
pub use value::{Collection, FhirType, Item, Node, TypeInfo};

use serde_json::Value as Json;
use std::collections::HashMap;
use std::fmt;

/// A syntax error, with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, message: &str) -> ParseError {
        ParseError {
            position,
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FHIRPath syntax error at {}: {}",
            self.position, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// An evaluation error (a type error, a singleton expected but several
/// items found, an unknown type name...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(message: impl Into<String>) -> EvalError {
        EvalError {
            message: message.into(),
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FHIRPath evaluation error: {}", self.message)
    }
}

impl std::error::Error for EvalError {}

/// A parsed FHIRPath expression, reusable and shareable across threads.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    root: parser::Expr,
}

impl Expression {
    /// Parses FHIRPath text; unknown functions and wrong argument counts
    /// are syntax errors here, not at evaluation.
    pub fn parse(src: &str) -> Result<Expression, ParseError> {
        Ok(Expression {
            source: src.to_owned(),
            root: parser::parse(src)?,
        })
    }

    /// Checks the expression statically against a context of FHIR type
    /// `root_type` (`Patient`, `HumanName`), as FHIRPath's strict mode does:
    /// unknown elements (`name.given1`, `Observation.valueQuantity`), root
    /// type names other than the context's, non-boolean `iif` criteria and
    /// order-dependent functions on `children()`/`descendants()` are errors.
    /// With `None` only what needs no context type is checked.
    pub fn check(&self, root_type: Option<&str>) -> Result<(), EvalError> {
        check::check(&self.root, root_type, false)
    }

    /// [`check`](Self::check) for an expression written for several
    /// resource types (a SearchParameter with several bases, such as
    /// `Patient.name | Person.name`): the other types' names select nothing
    /// instead of being errors.
    pub fn check_for_base(&self, resource_type: &str) -> Result<(), EvalError> {
        check::check(&self.root, Some(resource_type), true)
    }

    /// Whether the expression yields at most one item on any resource of
    /// `resource_type`, as far as its shape and the R4 model tell (see
    /// `single`): `Condition.onset.as(dateTime) | Condition.onset.as(Period)`
    /// does; `Patient.name.family` may not.
    pub fn at_most_one(&self, resource_type: &str) -> bool {
        single::at_most_one(&self.root, resource_type)
    }

    /// `element` when the expression is exactly `resource_type.element`:
    /// one element of the resource with nothing applied to it
    /// (`Observation.performer`). A union, a narrowing, a function or a
    /// longer path gives `None`.
    pub fn top_element(&self, resource_type: &str) -> Option<&str> {
        single::top_element(&self.root, resource_type)
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names of the external constants (`%name`, without the `%`) the
    /// expression refers to, in order of appearance, so that a caller can
    /// reject undefined ones before evaluating anything.
    pub fn external_constants(&self) -> Vec<&str> {
        let mut names = Vec::new();
        collect_constants(&self.root, &mut names);
        names
    }
}

fn collect_constants<'e>(expr: &'e parser::Expr, names: &mut Vec<&'e str>) {
    use parser::Expr;
    match expr {
        Expr::Constant(name) => names.push(name),
        Expr::Literal(_) | Expr::Empty | Expr::This | Expr::Index | Expr::Total => {}
        Expr::TypeRef(_) => {}
        Expr::Member { base, .. } => {
            if let Some(base) = base {
                collect_constants(base, names);
            }
        }
        Expr::Call { base, args, .. } => {
            if let Some(base) = base {
                collect_constants(base, names);
            }
            for a in args {
                collect_constants(a, names);
            }
        }
        Expr::Indexer(a, b) | Expr::Binary(_, a, b) => {
            collect_constants(a, names);
            collect_constants(b, names);
        }
        Expr::Negate(_, e) | Expr::Is(e, _) | Expr::As(e, _) => collect_constants(e, names),
    }
}

/// Resolves a reference string to a resource (for `resolve()`).
pub type Resolver<'a> = dyn Fn(&str) -> Option<&'a Json> + Send + Sync + 'a;
/// Answers `memberOf(valueSet)` for an item: `None` when unknown.
pub type MemberOf<'a> = dyn Fn(&Item<'_>, &str) -> Option<bool> + Send + Sync + 'a;
/// Answers `conformsTo(profile)` for an item: `None` when unknown.
pub type ConformsTo<'a> = dyn Fn(&Item<'_>, &str) -> Option<bool> + Send + Sync + 'a;
/// Receives `trace(name)` output.
pub type Tracer<'a> = dyn Fn(&str, &[Item<'_>]) + Send + Sync + 'a;

/// The evaluation environment: external constants (`%name`), the root
/// resource for `%rootResource` (e.g. the Bundle being indexed), and hooks.
#[derive(Default)]
pub struct Env<'a> {
    variables: HashMap<String, Collection<'a>>,
    root_resource: Option<&'a Json>,
    resolver: Option<Box<Resolver<'a>>>,
    member_of: Option<Box<MemberOf<'a>>>,
    conforms_to: Option<Box<ConformsTo<'a>>>,
    tracer: Option<Box<Tracer<'a>>>,
    now: Option<PartialDateTime>,
    lenient_as: bool,
}

impl fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<'a> Env<'a> {
    pub fn new() -> Env<'a> {
        Env::default()
    }

    /// Sets `%name` (without the `%`).
    pub fn with_variable(mut self, name: &str, value: Collection<'a>) -> Env<'a> {
        self.variables.insert(name.to_owned(), value);
        self
    }

    /// Sets or replaces `%name` in place, for callers that re-evaluate
    /// with a changing variable (SQL-on-FHIR's `%rowIndex`).
    pub fn set_variable(&mut self, name: &str, value: Collection<'a>) {
        match self.variables.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                self.variables.insert(name.to_owned(), value);
            }
        }
    }

    /// Sets `%rootResource` (defaults to the evaluated resource); a Bundle
    /// here lets `resolve()` find entries.
    pub fn with_root_resource(mut self, root: &'a Json) -> Env<'a> {
        self.root_resource = Some(root);
        self
    }

    /// Resolves references that are neither contained nor in the Bundle.
    pub fn with_resolver(
        mut self,
        f: impl Fn(&str) -> Option<&'a Json> + Send + Sync + 'a,
    ) -> Env<'a> {
        self.resolver = Some(Box::new(f));
        self
    }

    pub fn with_member_of(
        mut self,
        f: impl Fn(&Item<'_>, &str) -> Option<bool> + Send + Sync + 'a,
    ) -> Env<'a> {
        self.member_of = Some(Box::new(f));
        self
    }

    pub fn with_conforms_to(
        mut self,
        f: impl Fn(&Item<'_>, &str) -> Option<bool> + Send + Sync + 'a,
    ) -> Env<'a> {
        self.conforms_to = Some(Box::new(f));
        self
    }

    pub fn with_tracer(mut self, f: impl Fn(&str, &[Item<'_>]) + Send + Sync + 'a) -> Env<'a> {
        self.tracer = Some(Box::new(f));
        self
    }

    /// Lets the `as()` function filter a collection of several items (like
    /// `ofType()`) instead of failing as FHIRPath N1 says. R4's own
    /// invariants need this: `dom-3` applies `descendants().as(canonical)`.
    pub fn with_lenient_as(mut self, lenient: bool) -> Env<'a> {
        self.lenient_as = lenient;
        self
    }

    /// Fixes `now()` (and `today()`, `timeOfDay()`), e.g. for reproducible
    /// runs or to give the server's local zone; by default they read the
    /// clock once per evaluation, in UTC (this crate reads no time-zone
    /// database).
    pub fn with_now(mut self, now: PartialDateTime) -> Env<'a> {
        self.now = Some(now);
        self
    }
}

/// Evaluates `expr` with `resource` as `%resource`, `%context` and the
/// initial `$this`. A JSON `null` resource evaluates with an empty context.
pub fn evaluate<'a, 'v: 'a>(
    expr: &'a Expression,
    resource: &'a Json,
    env: &Env<'v>,
) -> Result<Collection<'a>, EvalError> {
    let context = if resource.is_null() {
        Vec::new()
    } else {
        vec![Item::resource(resource)]
    };
    evaluate_items(expr, resource, context, env)
}

/// Evaluates `expr` with an explicit context collection (`%context` and the
/// initial `$this`), for expressions rooted below the resource.
pub fn evaluate_items<'a, 'v: 'a>(
    expr: &'a Expression,
    resource: &'a Json,
    context: Collection<'a>,
    env: &Env<'v>,
) -> Result<Collection<'a>, EvalError> {
    eval::Evaluator::new(env, resource, context).run(&expr.root)
}

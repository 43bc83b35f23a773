//! The evaluator: scopes (`$this`, `$index`, `$total`), constants, member
//! navigation, polarity, type operators and the boolean operators with
//! three-valued logic; value operators live in `operators.rs` and functions
//! in `functions.rs`.

use super::datetime::PartialDateTime;
use super::navigate::{child, describe, is_type, resolve_type};
use super::operators::{compare_bool, compare_or_compute, is_comparison};
use super::parser::{BinOp, Expr, Literal};
use super::value::{Collection, Item};
use super::{Env, EvalError};
use serde_json::Value as Json;
use std::borrow::Cow;
use std::cell::OnceCell;

/// The iteration variables visible to an expression.
#[derive(Clone, Copy)]
pub struct Scope<'s, 'a> {
    pub this: &'s [Item<'a>],
    pub index: Option<i64>,
    pub total: Option<&'s [Item<'a>]>,
}

pub struct Evaluator<'e, 'v: 'a, 'a> {
    pub env: &'e Env<'v>,
    pub resource: &'a Json,
    pub context: Collection<'a>,
    now: OnceCell<PartialDateTime>,
}

pub type Res<'a> = Result<Collection<'a>, EvalError>;

pub fn err<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::new(msg))
}

/// The single item of a collection: `None` when empty, an error when there
/// are several.
pub fn singleton<'c, 'a>(c: &'c [Item<'a>], what: &str) -> Result<Option<&'c Item<'a>>, EvalError> {
    match c {
        [] => Ok(None),
        [x] => Ok(Some(x)),
        _ => err(format!("{what} expects a single item, got {}", c.len())),
    }
}

/// Singleton evaluation as a boolean: a single non-boolean item is `true`.
pub fn to_bool(c: &[Item<'_>], what: &str) -> Result<Option<bool>, EvalError> {
    Ok(singleton(c, what)?.map(|x| x.as_bool().unwrap_or(true)))
}

pub fn boolean<'a>(b: Option<bool>) -> Collection<'a> {
    b.map(Item::Boolean).into_iter().collect()
}

pub use super::dedup::push_distinct;

impl<'e, 'v: 'a, 'a> Evaluator<'e, 'v, 'a> {
    pub fn new(
        env: &'e Env<'v>,
        resource: &'a Json,
        context: Collection<'a>,
    ) -> Evaluator<'e, 'v, 'a> {
        Evaluator {
            env,
            resource,
            context,
            now: OnceCell::new(),
        }
    }

    pub fn run(&self, expr: &'a Expr) -> Res<'a> {
        self.eval(
            expr,
            Scope {
                this: &self.context,
                index: None,
                total: None,
            },
        )
    }

    /// The evaluation's fixed `now()`.
    pub fn now(&self) -> PartialDateTime {
        *self.now.get_or_init(|| {
            self.env.now.unwrap_or_else(|| {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                PartialDateTime::parse_date_time(&now, true).unwrap_or(PartialDateTime {
                    year: 1970,
                    month: 1,
                    day: 1,
                    hour: 0,
                    minute: 0,
                    second: 0,
                    millis: 0,
                    precision: super::Precision::Millis,
                    tz: Some(0),
                    zulu: true,
                })
            })
        })
    }

    pub fn eval(&self, expr: &'a Expr, scope: Scope<'_, 'a>) -> Res<'a> {
        match expr {
            Expr::Literal(lit) => Ok(vec![literal(lit)]),
            Expr::Empty => Ok(Vec::new()),
            Expr::This => Ok(scope.this.to_vec()),
            Expr::Index => Ok(scope.index.map(Item::Integer).into_iter().collect()),
            Expr::Total => Ok(scope.total.map(<[Item<'a>]>::to_vec).unwrap_or_default()),
            Expr::Constant(name) => self.constant(name),
            Expr::TypeRef(_) => err("a type name is not a value"),
            Expr::Member {
                base,
                name,
                ext_name,
            } => {
                let mut out = Vec::new();
                match base {
                    None => {
                        let type_like = name.starts_with(|c: char| c.is_ascii_uppercase());
                        // FHIR element names are lowerCamelCase, so a
                        // capitalised name can only be a type filter.
                        for item in scope.this {
                            if !type_like {
                                child(item, name, ext_name, &mut out);
                            } else if is_type_name(item, name) {
                                out.push(item.clone());
                            }
                        }
                    }
                    Some(base) => {
                        for item in &self.eval(base, scope)? {
                            child(item, name, ext_name, &mut out);
                        }
                    }
                }
                Ok(out)
            }
            Expr::Call { base, func, args } => {
                let input = match base {
                    Some(b) => self.eval(b, scope)?,
                    None => scope.this.to_vec(),
                };
                super::functions::call(self, *func, input, args, scope)
            }
            Expr::Indexer(base, index) => {
                let items = self.eval(base, scope)?;
                let idx = self.eval(index, scope)?;
                let Some(i) = singleton(&idx, "indexer")? else {
                    return Ok(Vec::new());
                };
                let i = i
                    .as_integer()
                    .ok_or_else(|| EvalError::new("index must be an integer"))?;
                Ok(usize::try_from(i)
                    .ok()
                    .and_then(|i| items.into_iter().nth(i))
                    .into_iter()
                    .collect())
            }
            Expr::Negate(neg, operand) => {
                let v = self.eval(operand, scope)?;
                let Some(x) = singleton(&v, "polarity")? else {
                    return Ok(Vec::new());
                };
                let out = match x.to_system() {
                    Some(Item::Integer(i)) if !*neg => Item::Integer(i),
                    Some(Item::Integer(i)) => match i.checked_neg() {
                        Some(n) => Item::Integer(n),
                        None => return Ok(Vec::new()),
                    },
                    Some(Item::Decimal(d)) => Item::Decimal(if *neg { d.negated() } else { d }),
                    Some(Item::Quantity(mut q)) => {
                        if *neg {
                            q.value = q.value.negated();
                        }
                        Item::Quantity(q)
                    }
                    _ => return err(format!("cannot negate {}", describe(x))),
                };
                Ok(vec![out])
            }
            Expr::Is(base, spec) => {
                let v = self.eval(base, scope)?;
                let target = resolve_type(spec)?;
                Ok(match singleton(&v, "is")? {
                    None => Vec::new(),
                    Some(x) => vec![Item::Boolean(is_type(x, target, false))],
                })
            }
            Expr::As(base, spec) => {
                let v = self.eval(base, scope)?;
                let target = resolve_type(spec)?;
                Ok(v.into_iter().filter(|x| is_type(x, target, true)).collect())
            }
            Expr::Binary(op, lhs, rhs) => self.binary(*op, lhs, rhs, scope),
        }
    }

    fn constant(&self, name: &str) -> Res<'a> {
        if let Some(v) = self.env.variables.get(name) {
            return Ok(v.clone());
        }
        let s = |v: String| Ok(vec![Item::String(Cow::Owned(v))]);
        match name {
            "resource" => Ok(if self.resource.is_null() {
                Vec::new()
            } else {
                vec![Item::resource(self.resource)]
            }),
            "rootResource" => Ok(match self.env.root_resource {
                Some(r) => vec![Item::resource(r)],
                None if !self.resource.is_null() => vec![Item::resource(self.resource)],
                None => Vec::new(),
            }),
            "context" => Ok(self.context.clone()),
            "ucum" => s("http://unitsofmeasure.org".into()),
            "sct" => s("http://snomed.info/sct".into()),
            "loinc" => s("http://loinc.org".into()),
            _ => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    s(format!("http://hl7.org/fhir/ValueSet/{vs}"))
                } else if let Some(ext) = name.strip_prefix("ext-") {
                    s(format!("http://hl7.org/fhir/StructureDefinition/{ext}"))
                } else {
                    err(format!("unknown external constant %{name}"))
                }
            }
        }
    }

    /// `a | b | c ...` evaluated as one de-duplicating pass (unions nest
    /// to the left, so the chain is walked down the left operands).
    fn union_chain(&self, lhs: &'a Expr, rhs: &'a Expr, scope: Scope<'_, 'a>) -> Res<'a> {
        let mut operands = vec![rhs];
        let mut left = lhs;
        while let Expr::Binary(BinOp::Union, l, r) = left {
            operands.push(r);
            left = l;
        }
        operands.push(left);
        let mut out = Vec::new();
        for operand in operands.into_iter().rev() {
            let items = self.eval(operand, scope)?;
            push_distinct(&mut out, items);
        }
        Ok(out)
    }

    fn binary(&self, op: BinOp, lhs: &'a Expr, rhs: &'a Expr, scope: Scope<'_, 'a>) -> Res<'a> {
        match op {
            BinOp::Union => self.union_chain(lhs, rhs, scope),
            BinOp::And | BinOp::Or | BinOp::Implies | BinOp::Xor => {
                Ok(boolean(self.logic(op, lhs, rhs, scope)?))
            }
            _ => {
                let left = self.eval(lhs, scope)?;
                // A literal operand (`system = 'phone'`) needs no collection.
                if let Expr::Literal(lit) = rhs {
                    let item = literal(lit);
                    return compare_or_compute(op, &left, std::slice::from_ref(&item));
                }
                let right = self.eval(rhs, scope)?;
                compare_or_compute(op, &left, &right)
            }
        }
    }

    /// `and`, `or`, `xor`, `implies` with three-valued logic; the right
    /// operand is skipped when the left one decides.
    fn logic(
        &self,
        op: BinOp,
        lhs: &'a Expr,
        rhs: &'a Expr,
        scope: Scope<'_, 'a>,
    ) -> Result<Option<bool>, EvalError> {
        let a = self.predicate(lhs, scope, "boolean operator")?;
        let decided = match op {
            BinOp::And => a == Some(false),
            BinOp::Or => a == Some(true),
            BinOp::Implies => a == Some(false),
            _ => false,
        };
        if decided {
            return Ok(Some(op != BinOp::And));
        }
        let b = self.predicate(rhs, scope, "boolean operator")?;
        Ok(match op {
            BinOp::And => match (a, b) {
                (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            BinOp::Or => match (a, b) {
                (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            BinOp::Xor => match (a, b) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            },
            _ => match (a, b) {
                (_, Some(true)) => Some(true),
                (Some(true), b) => b,
                _ => None,
            },
        })
    }

    /// Evaluates a criterion (`where`, `exists`, `all`, `iif`, boolean
    /// operands) as a singleton boolean, computing comparisons and boolean
    /// operators without building result collections.
    pub fn predicate(
        &self,
        expr: &'a Expr,
        scope: Scope<'_, 'a>,
        what: &str,
    ) -> Result<Option<bool>, EvalError> {
        match expr {
            Expr::Binary(op, lhs, rhs) if is_comparison(*op) => {
                let left = self.eval(lhs, scope)?;
                if let Expr::Literal(lit) = &**rhs {
                    let item = literal(lit);
                    return compare_bool(*op, &left, std::slice::from_ref(&item));
                }
                let right = self.eval(rhs, scope)?;
                compare_bool(*op, &left, &right)
            }
            Expr::Binary(op @ (BinOp::And | BinOp::Or | BinOp::Implies | BinOp::Xor), lhs, rhs) => {
                self.logic(*op, lhs, rhs, scope)
            }
            _ => to_bool(&self.eval(expr, scope)?, what),
        }
    }
}

/// A type name at the start of a path (`Patient.name`, `Resource.id`)
/// selects the context item when it is of that type or a subtype.
fn is_type_name(item: &Item<'_>, name: &str) -> bool {
    matches!(item, Item::Fhir(_)) && super::navigate::type_name_matches(item.type_name(), name)
}

pub fn literal<'a>(lit: &'a Literal) -> Item<'a> {
    match lit {
        Literal::Boolean(b) => Item::Boolean(*b),
        Literal::Integer(i) => Item::Integer(*i),
        Literal::Decimal(d) => Item::Decimal(*d),
        Literal::String(s) => Item::String(Cow::Borrowed(s)),
        Literal::Date(d) => Item::Date(*d),
        Literal::DateTime(d) => Item::DateTime(*d),
        Literal::Time(t) => Item::Time(*t),
        Literal::Quantity(q) => Item::Quantity(Box::new(q.clone())),
    }
}

//! Static checking ("strict mode"): infers the possible types of each
//! subexpression from the structure model and rejects paths that can never
//! produce anything (`Patient.name.given1`, `Observation.valueQuantity`,
//! `(Observation.value as Period).unit`), root type names that do not match
//! the context type, non-boolean `iif` criteria, and order-dependent
//! functions applied to the unordered `children()`/`descendants()`.

use super::EvalError;
use super::functions::Func;
use super::navigate::{TypeTarget, resolve_type, type_name_matches};
use super::parser::{BinOp, Expr, Literal, TypeSpec};
use crate::definitions::{NodeId, NodeKind, Primitive, ValueKind, structure_model};

/// A statically known type.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SType {
    Node(NodeId),
    Primitive(Primitive),
    System(&'static str),
    /// Any resource (a contained resource, `resolve()`).
    Resource,
    /// Unknown: nothing below can be checked.
    Any,
}

#[derive(Clone, Debug)]
struct Types {
    types: Vec<SType>,
    ordered: bool,
}

impl Types {
    fn of(types: Vec<SType>) -> Types {
        Types {
            types,
            ordered: true,
        }
    }
    fn one(t: SType) -> Types {
        Types::of(vec![t])
    }
    fn any() -> Types {
        Types::one(SType::Any)
    }
    fn has_any(&self) -> bool {
        self.types
            .iter()
            .any(|t| matches!(t, SType::Any | SType::Resource))
    }
}

fn err<T>(msg: String) -> Result<T, EvalError> {
    Err(EvalError::new(msg))
}

fn type_name(t: SType) -> String {
    let model = structure_model();
    match t {
        SType::Node(id) => model.node(id).map_or("?".into(), |n| n.name.to_string()),
        SType::Primitive(p) => p.code().to_owned(),
        SType::System(s) => format!("System.{s}"),
        SType::Resource => "Resource".into(),
        SType::Any => "?".into(),
    }
}

fn spec_type(spec: &TypeSpec) -> Result<SType, EvalError> {
    Ok(match resolve_type(spec)? {
        TypeTarget::System(s) => SType::System(s),
        TypeTarget::AnyQuantity => SType::Any,
        TypeTarget::Fhir(name) => {
            let model = structure_model();
            if let Some(p) = Primitive::from_code(name) {
                SType::Primitive(p)
            } else {
                match model.node_named(name) {
                    Some(n) if n.kind == NodeKind::Resource && n.is_abstract => SType::Resource,
                    Some(_) => model.node_id(name).map_or(SType::Any, SType::Node),
                    None => SType::Any,
                }
            }
        }
    })
}

struct Checker {
    root: Types,
    /// Type names of other resources select nothing instead of failing.
    other_roots_empty: bool,
}

/// Checks `expr` against a context of FHIR type `root_type` (a resource or
/// datatype name); `None` checks without a context type.
pub fn check(
    expr: &Expr,
    root_type: Option<&str>,
    other_roots_empty: bool,
) -> Result<(), EvalError> {
    let root = match root_type.and_then(|t| structure_model().node_id(t)) {
        Some(id) => Types::one(SType::Node(id)),
        None => Types::any(),
    };
    let checker = Checker {
        root: root.clone(),
        other_roots_empty,
    };
    checker.infer(expr, &root).map(|_| ())
}

impl Checker {
    fn member(&self, this: &Types, name: &str) -> Result<Types, EvalError> {
        if this.has_any() {
            return Ok(Types::any());
        }
        let model = structure_model();
        let mut out = Vec::new();
        let mut navigable = false;
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            for t in &this.types {
                if let SType::Node(id) = t {
                    navigable = true;
                    if model
                        .node(*id)
                        .is_some_and(|n| type_name_matches(&n.name, name))
                    {
                        out.push(*t);
                    }
                }
            }
            let other_resource = model.resource(name).is_some();
            if navigable && out.is_empty() && !(self.other_roots_empty && other_resource) {
                return err(format!("'{name}' does not match the context type"));
            }
            return Ok(Types::of(out));
        }
        for t in &this.types {
            let node = match t {
                SType::Node(id) => model.node(*id),
                SType::Primitive(p) => model.node_named(p.code()),
                _ => None,
            };
            let Some(node) = node else { continue };
            navigable = true;
            if let Some(e) = node.element(name) {
                for ty in &e.types {
                    out.push(match ty.kind {
                        ValueKind::Primitive { primitive, .. } => SType::Primitive(primitive),
                        ValueKind::Complex(id) => SType::Node(id),
                        ValueKind::Resource => SType::Resource,
                    });
                }
            }
        }
        if navigable && out.is_empty() {
            let names: Vec<String> = this.types.iter().map(|t| type_name(*t)).collect();
            return err(format!("no element '{name}' on {}", names.join(" | ")));
        }
        Ok(Types {
            types: out,
            ordered: this.ordered,
        })
    }

    fn infer(&self, expr: &Expr, this: &Types) -> Result<Types, EvalError> {
        let boolean = Types::one(SType::System("Boolean"));
        Ok(match expr {
            Expr::Literal(l) => Types::one(SType::System(match l {
                Literal::Boolean(_) => "Boolean",
                Literal::Integer(_) => "Integer",
                Literal::Decimal(_) => "Decimal",
                Literal::String(_) => "String",
                Literal::Date(_) => "Date",
                Literal::DateTime(_) => "DateTime",
                Literal::Time(_) => "Time",
                Literal::Quantity(_) => "Quantity",
            })),
            Expr::Empty => Types::of(Vec::new()),
            Expr::This => this.clone(),
            Expr::Index => Types::one(SType::System("Integer")),
            Expr::Total | Expr::TypeRef(_) => Types::any(),
            Expr::Constant(name) => match name.as_str() {
                "resource" | "rootResource" | "context" => self.root.clone(),
                _ => Types::any(),
            },
            Expr::Member { base, name, .. } => {
                let input = match base {
                    Some(b) => self.infer(b, this)?,
                    None => this.clone(),
                };
                self.member(&input, name)?
            }
            Expr::Indexer(base, index) => {
                let b = self.infer(base, this)?;
                self.infer(index, this)?;
                if !b.ordered {
                    return err("indexer on an unordered collection".into());
                }
                b
            }
            Expr::Negate(_, e) => self.infer(e, this)?,
            Expr::Is(base, spec) => {
                self.infer(base, this)?;
                spec_type(spec)?;
                boolean
            }
            Expr::As(base, spec) => {
                let b = self.infer(base, this)?;
                Types {
                    types: vec![spec_type(spec)?],
                    ordered: b.ordered,
                }
            }
            Expr::Binary(op, l, r) => {
                let (a, b) = (self.infer(l, this)?, self.infer(r, this)?);
                match op {
                    BinOp::Union => Types {
                        ordered: a.ordered && b.ordered,
                        types: a.types.into_iter().chain(b.types).collect(),
                    },
                    BinOp::Add
                    | BinOp::Sub
                    | BinOp::Mul
                    | BinOp::Div
                    | BinOp::IntDiv
                    | BinOp::Mod => Types::any(),
                    BinOp::Concat => Types::one(SType::System("String")),
                    _ => boolean,
                }
            }
            Expr::Call { base, func, args } => {
                let input = match base {
                    Some(b) => self.infer(b, this)?,
                    None => this.clone(),
                };
                self.call(*func, &input, args, this)?
            }
        })
    }

    fn call(
        &self,
        func: Func,
        input: &Types,
        args: &[Expr],
        this: &Types,
    ) -> Result<Types, EvalError> {
        let item = Types {
            types: input.types.clone(),
            ordered: true,
        };
        let lambda = matches!(
            func,
            Func::Where
                | Func::Select
                | Func::All
                | Func::Exists
                | Func::Repeat
                | Func::Aggregate
                | Func::Sort
        );
        let mut arg_types = Vec::with_capacity(args.len());
        for (k, a) in args.iter().enumerate() {
            let scope = if lambda || func == Func::Iif || (func == Func::Trace && k == 1) {
                &item
            } else {
                this
            };
            arg_types.push(self.infer(a, scope)?);
        }
        if matches!(
            func,
            Func::Skip | Func::Take | Func::First | Func::Last | Func::Tail
        ) && !input.ordered
        {
            return err(format!("{}() on an unordered collection", func.name()));
        }
        let spec = || match args.first() {
            Some(Expr::TypeRef(spec)) => spec_type(spec),
            _ => Ok(SType::Any),
        };
        Ok(match func {
            Func::Where
            | Func::First
            | Func::Last
            | Func::Tail
            | Func::Skip
            | Func::Take
            | Func::Single
            | Func::Distinct
            | Func::Intersect
            | Func::Exclude
            | Func::Trace
            | Func::Sort => input.clone(),
            Func::Select => arg_types.pop().unwrap_or_else(Types::any),
            Func::OfType | Func::As => Types {
                types: vec![spec()?],
                ordered: input.ordered,
            },
            Func::Is => {
                spec()?;
                Types::one(SType::System("Boolean"))
            }
            Func::Children | Func::Descendants => Types {
                types: vec![SType::Any],
                ordered: false,
            },
            Func::Extension => structure_model()
                .node_id("Extension")
                .map_or_else(Types::any, |id| Types::one(SType::Node(id))),
            Func::Resolve => Types::one(SType::Resource),
            Func::Iif => {
                let criterion = &arg_types[0];
                let non_boolean = !criterion.types.is_empty()
                    && criterion
                        .types
                        .iter()
                        .all(|t| matches!(t, SType::System(s) if *s != "Boolean"));
                if non_boolean {
                    return err("iif() criterion is not a boolean".into());
                }
                Types {
                    types: arg_types[1..]
                        .iter()
                        .flat_map(|t| t.types.clone())
                        .collect(),
                    ordered: true,
                }
            }
            Func::Empty
            | Func::Exists
            | Func::All
            | Func::AllTrue
            | Func::AnyTrue
            | Func::AllFalse
            | Func::AnyFalse
            | Func::SubsetOf
            | Func::SupersetOf
            | Func::IsDistinct
            | Func::Not
            | Func::HasValue
            | Func::StartsWith
            | Func::EndsWith
            | Func::Contains
            | Func::Matches
            | Func::MatchesFull => Types::one(SType::System("Boolean")),
            Func::Count | Func::Length | Func::IndexOf | Func::LastIndexOf => {
                Types::one(SType::System("Integer"))
            }
            _ => Types::any(),
        })
    }
}

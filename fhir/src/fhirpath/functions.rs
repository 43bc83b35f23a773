//! The function table (names, arities, which arguments are lambdas or
//! types) and the collection functions: existence, filtering, subsetting,
//! combining, boolean aggregates, `iif`, `aggregate`, `sort`, `trace`.

use super::EvalError;
use super::compare::{OrderError, order};
use super::dedup::{Seen, membership, push_distinct};
use super::eval::{Evaluator, Res, Scope, boolean, err, singleton, to_bool};
use super::navigate::{is_type, resolve_type};
use super::parser::Expr;
use super::value::{Collection, Item};
use std::cmp::Ordering;

macro_rules! funcs {
    ($($variant:ident = $name:literal ($min:literal, $max:literal)),* $(,)?) => {
        /// A FHIRPath function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Func { $($variant),* }

        impl Func {
            pub fn from_name(name: &str) -> Option<Func> {
                match name { $($name => Some(Func::$variant),)* _ => None }
            }
            /// Minimum and maximum argument counts.
            pub fn arity(self) -> (usize, usize) {
                match self { $(Func::$variant => ($min, $max)),* }
            }
            pub fn name(self) -> &'static str {
                match self { $(Func::$variant => $name),* }
            }
        }
    };
}

funcs! {
    Empty = "empty"(0, 0), Exists = "exists"(0, 1), All = "all"(1, 1),
    AllTrue = "allTrue"(0, 0), AnyTrue = "anyTrue"(0, 0), AllFalse = "allFalse"(0, 0),
    AnyFalse = "anyFalse"(0, 0), SubsetOf = "subsetOf"(1, 1), SupersetOf = "supersetOf"(1, 1),
    Count = "count"(0, 0), Distinct = "distinct"(0, 0), IsDistinct = "isDistinct"(0, 0),
    Where = "where"(1, 1), Select = "select"(1, 1), Repeat = "repeat"(1, 1),
    OfType = "ofType"(1, 1), As = "as"(1, 1), Is = "is"(1, 1),
    Single = "single"(0, 0), First = "first"(0, 0), Last = "last"(0, 0), Tail = "tail"(0, 0),
    Skip = "skip"(1, 1), Take = "take"(1, 1), Intersect = "intersect"(1, 1),
    Exclude = "exclude"(1, 1), Union = "union"(1, 1), Combine = "combine"(1, 1),
    Iif = "iif"(2, 3),
    ToBoolean = "toBoolean"(0, 0), ConvertsToBoolean = "convertsToBoolean"(0, 0),
    ToInteger = "toInteger"(0, 0), ConvertsToInteger = "convertsToInteger"(0, 0),
    ToDecimal = "toDecimal"(0, 0), ConvertsToDecimal = "convertsToDecimal"(0, 0),
    ToStringFn = "toString"(0, 0), ConvertsToString = "convertsToString"(0, 0),
    ToDate = "toDate"(0, 0), ConvertsToDate = "convertsToDate"(0, 0),
    ToDateTime = "toDateTime"(0, 0), ConvertsToDateTime = "convertsToDateTime"(0, 0),
    ToTime = "toTime"(0, 0), ConvertsToTime = "convertsToTime"(0, 0),
    ToQuantity = "toQuantity"(0, 1), ConvertsToQuantity = "convertsToQuantity"(0, 1),
    IndexOf = "indexOf"(1, 1), LastIndexOf = "lastIndexOf"(1, 1),
    Substring = "substring"(1, 2), StartsWith = "startsWith"(1, 1),
    EndsWith = "endsWith"(1, 1), Contains = "contains"(1, 1), Upper = "upper"(0, 0),
    Lower = "lower"(0, 0), Replace = "replace"(2, 2), Matches = "matches"(1, 1),
    MatchesFull = "matchesFull"(1, 1), ReplaceMatches = "replaceMatches"(2, 2),
    Length = "length"(0, 0), ToChars = "toChars"(0, 0), Trim = "trim"(0, 0),
    Split = "split"(1, 1), Join = "join"(0, 1), Encode = "encode"(1, 1),
    Decode = "decode"(1, 1), Escape = "escape"(1, 1), Unescape = "unescape"(1, 1),
    Abs = "abs"(0, 0), Ceiling = "ceiling"(0, 0), Exp = "exp"(0, 0), Floor = "floor"(0, 0),
    Ln = "ln"(0, 0), Log = "log"(1, 1), Power = "power"(1, 1), Round = "round"(0, 1),
    Sqrt = "sqrt"(0, 0), Truncate = "truncate"(0, 0),
    LowBoundary = "lowBoundary"(0, 1), HighBoundary = "highBoundary"(0, 1),
    Precision = "precision"(0, 0), Comparable = "comparable"(1, 1),
    Children = "children"(0, 0), Descendants = "descendants"(0, 0),
    Trace = "trace"(1, 2), Now = "now"(0, 0), Today = "today"(0, 0),
    TimeOfDay = "timeOfDay"(0, 0), Not = "not"(0, 0), Aggregate = "aggregate"(1, 2),
    Sort = "sort"(0, 8), Type = "type"(0, 0), HasValue = "hasValue"(0, 0),
    GetValue = "getValue"(0, 0), Extension = "extension"(1, 1), Resolve = "resolve"(0, 0),
    HtmlChecks = "htmlChecks"(0, 0), MemberOf = "memberOf"(1, 1),
    ConformsTo = "conformsTo"(1, 1),
    GetResourceKey = "getResourceKey"(0, 0), GetReferenceKey = "getReferenceKey"(0, 1),
}

impl Func {
    /// Functions whose argument is a type specifier.
    pub fn takes_type(self) -> bool {
        matches!(
            self,
            Func::OfType | Func::As | Func::Is | Func::GetReferenceKey
        )
    }
}

/// Evaluates argument `k` in the caller's scope.
pub fn arg<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    args: &'a [Expr],
    k: usize,
    scope: Scope<'_, 'a>,
) -> Res<'a> {
    match args.get(k) {
        Some(a) => ev.eval(a, scope),
        None => Ok(Vec::new()),
    }
}

/// Evaluates a lambda argument with `$this` = `item`, `$index` = `index`.
pub fn lambda<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    expr: &'a Expr,
    item: &Item<'a>,
    index: usize,
    total: Option<&[Item<'a>]>,
) -> Res<'a> {
    let this = std::slice::from_ref(item);
    ev.eval(
        expr,
        Scope {
            this,
            index: i64::try_from(index).ok(),
            total,
        },
    )
}

/// A lambda criterion (`where`, `exists`, `all`) as a singleton boolean.
fn criterion<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    expr: &'a Expr,
    item: &Item<'a>,
    index: usize,
    what: &str,
) -> Result<Option<bool>, EvalError> {
    let scope = Scope {
        this: std::slice::from_ref(item),
        index: i64::try_from(index).ok(),
        total: None,
    };
    ev.predicate(expr, scope, what)
}

/// An integer argument (`skip(2)`), `None` when empty.
pub fn int_arg<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    args: &'a [Expr],
    k: usize,
    scope: Scope<'_, 'a>,
) -> Result<Option<i64>, EvalError> {
    let v = arg(ev, args, k, scope)?;
    match singleton(&v, "argument")? {
        None => Ok(None),
        Some(x) => x
            .as_integer()
            .map(Some)
            .ok_or_else(|| EvalError::new("expected an integer argument")),
    }
}

fn all_bools(input: &[Item<'_>], what: &str) -> Result<Vec<bool>, EvalError> {
    input
        .iter()
        .map(|x| {
            x.as_bool()
                .ok_or_else(|| EvalError::new(format!("{what} expects booleans")))
        })
        .collect()
}

pub fn call<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    func: Func,
    input: Collection<'a>,
    args: &'a [Expr],
    scope: Scope<'_, 'a>,
) -> Res<'a> {
    let b = |v: bool| Ok(vec![Item::Boolean(v)]);
    match func {
        Func::Empty => b(input.is_empty()),
        Func::Exists => match args.first() {
            None => b(!input.is_empty()),
            Some(criteria) => {
                for (i, item) in input.iter().enumerate() {
                    if criterion(ev, criteria, item, i, "exists")? == Some(true) {
                        return b(true);
                    }
                }
                b(false)
            }
        },
        Func::All => {
            for (i, item) in input.iter().enumerate() {
                if criterion(ev, &args[0], item, i, "all")? != Some(true) {
                    return b(false);
                }
            }
            b(true)
        }
        Func::AllTrue => b(all_bools(&input, "allTrue")?.iter().all(|x| *x)),
        Func::AnyTrue => b(all_bools(&input, "anyTrue")?.iter().any(|x| *x)),
        Func::AllFalse => b(all_bools(&input, "allFalse")?.iter().all(|x| !*x)),
        Func::AnyFalse => b(all_bools(&input, "anyFalse")?.iter().any(|x| !*x)),
        Func::SubsetOf | Func::SupersetOf => {
            let other = arg(ev, args, 0, scope)?;
            let (small, big) = if func == Func::SubsetOf {
                (&input, &other)
            } else {
                (&other, &input)
            };
            b(membership(big, small).into_iter().all(|m| m))
        }
        Func::Count => Ok(vec![Item::Integer(
            i64::try_from(input.len()).unwrap_or(i64::MAX),
        )]),
        Func::Distinct => {
            let mut out = Vec::with_capacity(input.len());
            push_distinct(&mut out, input);
            Ok(out)
        }
        Func::IsDistinct => {
            let n = input.len();
            let mut out = Vec::with_capacity(n);
            push_distinct(&mut out, input);
            b(out.len() == n)
        }
        Func::Where => {
            let mut out = Vec::new();
            for (i, item) in input.into_iter().enumerate() {
                if criterion(ev, &args[0], &item, i, "where")? == Some(true) {
                    out.push(item);
                }
            }
            Ok(out)
        }
        Func::Select => {
            let mut out = Vec::new();
            for (i, item) in input.iter().enumerate() {
                out.extend(lambda(ev, &args[0], item, i, None)?);
            }
            Ok(out)
        }
        Func::Repeat => {
            let mut out: Collection<'a> = Vec::new();
            let mut seen = Seen::new(&out, true);
            let mut current = input;
            while !current.is_empty() {
                let mut next = Vec::new();
                for (i, item) in current.iter().enumerate() {
                    for r in lambda(ev, &args[0], item, i, None)? {
                        if seen.insert(&mut out, r.clone()) {
                            next.push(r);
                        }
                    }
                }
                current = next;
            }
            Ok(out)
        }
        Func::OfType | Func::As | Func::Is => {
            let Some(Expr::TypeRef(spec)) = args.first() else {
                return err("expected a type");
            };
            let target = resolve_type(spec)?;
            match func {
                Func::OfType => Ok(input
                    .into_iter()
                    .filter(|x| is_type(x, target, true))
                    .collect()),
                Func::As if ev.env.lenient_as => Ok(input
                    .into_iter()
                    .filter(|x| is_type(x, target, true))
                    .collect()),
                Func::As => Ok(match singleton(&input, "as")? {
                    Some(x) if is_type(x, target, true) => vec![x.clone()],
                    _ => Vec::new(),
                }),
                _ => Ok(match singleton(&input, "is")? {
                    Some(x) => vec![Item::Boolean(is_type(x, target, false))],
                    None => Vec::new(),
                }),
            }
        }
        Func::Single => Ok(singleton(&input, "single")?.cloned().into_iter().collect()),
        Func::First => Ok(input.into_iter().take(1).collect()),
        Func::Last => Ok(input.into_iter().last().into_iter().collect()),
        Func::Tail => Ok(input.into_iter().skip(1).collect()),
        Func::Skip | Func::Take => {
            let Some(n) = int_arg(ev, args, 0, scope)? else {
                return Ok(if func == Func::Skip {
                    input
                } else {
                    Vec::new()
                });
            };
            let n = usize::try_from(n.max(0)).unwrap_or(0);
            Ok(if func == Func::Skip {
                input.into_iter().skip(n).collect()
            } else {
                input.into_iter().take(n).collect()
            })
        }
        Func::Intersect => {
            let other = arg(ev, args, 0, scope)?;
            let found = membership(&other, &input);
            let kept = input
                .into_iter()
                .zip(found)
                .filter(|(_, f)| *f)
                .map(|(x, _)| x);
            let mut out = Vec::new();
            push_distinct(&mut out, kept.collect());
            Ok(out)
        }
        Func::Exclude => {
            let other = arg(ev, args, 0, scope)?;
            let found = membership(&other, &input);
            Ok(input
                .into_iter()
                .zip(found)
                .filter(|(_, f)| !*f)
                .map(|(x, _)| x)
                .collect())
        }
        Func::Union => {
            let other = arg(ev, args, 0, scope)?;
            let mut out = Vec::new();
            push_distinct(&mut out, input);
            push_distinct(&mut out, other);
            Ok(out)
        }
        Func::Combine => {
            let mut out = input;
            out.extend(arg(ev, args, 0, scope)?);
            Ok(out)
        }
        Func::Iif => {
            if input.len() > 1 {
                return err("iif() called on a collection of several items");
            }
            let inner = Scope {
                this: &input,
                index: scope.index,
                total: scope.total,
            };
            if ev.predicate(&args[0], inner, "iif criterion")? == Some(true) {
                ev.eval(&args[1], inner)
            } else {
                match args.get(2) {
                    Some(e) => ev.eval(e, inner),
                    None => Ok(Vec::new()),
                }
            }
        }
        Func::Not => Ok(boolean(to_bool(&input, "not")?.map(|x| !x))),
        Func::Aggregate => {
            let mut total = arg(ev, args, 1, scope)?;
            for (i, item) in input.iter().enumerate() {
                total = lambda(ev, &args[0], item, i, Some(&total))?;
            }
            Ok(total)
        }
        Func::Trace => {
            let name = arg(ev, args, 0, scope)?;
            let name = name.first().and_then(Item::as_str).unwrap_or("").to_owned();
            if let Some(tracer) = &ev.env.tracer {
                match args.get(1) {
                    Some(p) => {
                        let mut projected = Vec::new();
                        for (i, item) in input.iter().enumerate() {
                            projected.extend(lambda(ev, p, item, i, None)?);
                        }
                        tracer(&name, &projected);
                    }
                    None => tracer(&name, &input),
                }
            }
            Ok(input)
        }
        Func::Sort => sort(ev, input, args),
        _ => super::func_string::call(ev, func, input, args, scope),
    }
}

fn sort<'a>(ev: &Evaluator<'_, '_, 'a>, input: Collection<'a>, args: &'a [Expr]) -> Res<'a> {
    // Keys per item; a leading `-` on a key sorts descending.
    let mut keyed = Vec::with_capacity(input.len());
    for (i, item) in input.into_iter().enumerate() {
        let mut keys = Vec::with_capacity(args.len().max(1));
        if args.is_empty() {
            keys.push((vec![item.clone()], false));
        }
        for a in args {
            let (expr, desc) = match a {
                Expr::Negate(true, inner) => (&**inner, true),
                other => (other, false),
            };
            keys.push((lambda(ev, expr, &item, i, None)?, desc));
        }
        keyed.push((keys, item));
    }
    let mut failure = None;
    keyed.sort_by(|(ka, _), (kb, _)| {
        for ((a, desc), (b, _)) in ka.iter().zip(kb) {
            // Items without a key come first in either direction.
            let o = match (a.first(), b.first()) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => match order(x, y) {
                    Ok(o) => o.unwrap_or(Ordering::Equal),
                    Err(OrderError::Incomparable) => {
                        failure = Some(EvalError::new("sort keys are not comparable"));
                        Ordering::Equal
                    }
                },
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(keyed.into_iter().map(|(_, item)| item).collect()),
    }
}

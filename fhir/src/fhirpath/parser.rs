//! The FHIRPath syntax tree and a precedence-climbing parser for the N1
//! grammar (operators from `implies` up to `.`/`[]` invocation).

use super::ParseError;
use super::datetime::PartialDateTime;
use super::decimal::Decimal;
use super::functions::Func;
use super::lexer::{Spanned, Token, tokenize};
use super::ucum::{Quantity, calendar_unit};

/// A type specifier (`Quantity`, `FHIR.Patient`, `System.Boolean`).
#[derive(Clone, Debug, PartialEq)]
pub struct TypeSpec {
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Clone, Debug)]
pub enum Literal {
    Boolean(bool),
    Integer(i64),
    Decimal(Decimal),
    String(String),
    Date(PartialDateTime),
    DateTime(PartialDateTime),
    Time(PartialDateTime),
    Quantity(Quantity),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Mul,
    Div,
    IntDiv,
    Mod,
    Add,
    Sub,
    Concat,
    Union,
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    Equiv,
    Ne,
    NotEquiv,
    In,
    Contains,
    And,
    Or,
    Xor,
    Implies,
}

#[derive(Clone, Debug)]
pub enum Expr {
    Literal(Literal),
    /// `{}`
    Empty,
    This,
    Index,
    Total,
    /// `%name`
    Constant(String),
    /// Element navigation; `base` `None` navigates from `$this`.
    /// `ext_name` is `_name`, the JSON primitive-extension companion.
    Member {
        base: Option<Box<Expr>>,
        name: String,
        ext_name: String,
    },
    Call {
        base: Option<Box<Expr>>,
        func: Func,
        args: Vec<Expr>,
    },
    /// A type argument of `is()`, `as()`, `ofType()`.
    TypeRef(TypeSpec),
    Indexer(Box<Expr>, Box<Expr>),
    /// Polarity: `true` for `-`.
    Negate(bool, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Is(Box<Expr>, TypeSpec),
    As(Box<Expr>, TypeSpec),
}

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    end: usize,
}

fn binary_op(token: &Token) -> Option<(u8, BinOp)> {
    Some(match token {
        Token::Op("*") => (10, BinOp::Mul),
        Token::Op("/") => (10, BinOp::Div),
        Token::Ident(w) if w == "div" => (10, BinOp::IntDiv),
        Token::Ident(w) if w == "mod" => (10, BinOp::Mod),
        Token::Op("+") => (9, BinOp::Add),
        Token::Op("-") => (9, BinOp::Sub),
        Token::Op("&") => (9, BinOp::Concat),
        Token::Op("|") => (7, BinOp::Union),
        Token::Op("<") => (6, BinOp::Lt),
        Token::Op(">") => (6, BinOp::Gt),
        Token::Op("<=") => (6, BinOp::Le),
        Token::Op(">=") => (6, BinOp::Ge),
        Token::Op("=") => (5, BinOp::Eq),
        Token::Op("~") => (5, BinOp::Equiv),
        Token::Op("!=") => (5, BinOp::Ne),
        Token::Op("!~") => (5, BinOp::NotEquiv),
        Token::Ident(w) if w == "in" => (4, BinOp::In),
        Token::Ident(w) if w == "contains" => (4, BinOp::Contains),
        Token::Ident(w) if w == "and" => (3, BinOp::And),
        Token::Ident(w) if w == "or" => (2, BinOp::Or),
        Token::Ident(w) if w == "xor" => (2, BinOp::Xor),
        Token::Ident(w) if w == "implies" => (1, BinOp::Implies),
        _ => return None,
    })
}

/// Precedence of `is` / `as`.
const TYPE_PREC: u8 = 8;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.token)
    }

    fn here(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |t| t.pos)
    }

    fn err<T>(&self, msg: &str) -> Result<T, ParseError> {
        Err(ParseError::new(self.here(), msg))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|t| t.token.clone());
        self.pos += 1;
        t
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            self.err(&format!("expected '{op}'"))
        }
    }

    fn expression(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        while let Some(token) = self.peek() {
            if let Token::Ident(w) = token {
                if (w == "is" || w == "as") && TYPE_PREC >= min_prec {
                    let is = w == "is";
                    self.pos += 1;
                    let spec = self.type_spec()?;
                    lhs = if is {
                        Expr::Is(Box::new(lhs), spec)
                    } else {
                        Expr::As(Box::new(lhs), spec)
                    };
                    continue;
                }
            }
            let Some((prec, op)) = binary_op(token) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            self.pos += 1;
            let rhs = self.expression(prec + 1)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn identifier(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Some(Token::Ident(s)) | Some(Token::Delimited(s)) => Ok(s),
            _ => {
                self.pos -= 1;
                self.err("expected an identifier")
            }
        }
    }

    fn type_spec(&mut self) -> Result<TypeSpec, ParseError> {
        let first = self.identifier()?;
        if self.eat_op(".") {
            let name = self.identifier()?;
            Ok(TypeSpec {
                namespace: Some(first),
                name,
            })
        } else {
            Ok(TypeSpec {
                namespace: None,
                name: first,
            })
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat_op("-") {
            return Ok(Expr::Negate(true, Box::new(self.unary()?)));
        }
        if self.eat_op("+") {
            return Ok(Expr::Negate(false, Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.term()?;
        loop {
            if self.eat_op(".") {
                expr = self.invocation(Some(Box::new(expr)))?;
            } else if self.eat_op("[") {
                let index = self.expression(0)?;
                self.expect_op("]")?;
                expr = Expr::Indexer(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn invocation(&mut self, base: Option<Box<Expr>>) -> Result<Expr, ParseError> {
        let at = self.here();
        let name = match self.next() {
            Some(Token::Ident(s)) | Some(Token::Delimited(s)) => s,
            Some(Token::Var(v)) if base.is_none() => {
                return match v.as_str() {
                    "this" => Ok(Expr::This),
                    "index" => Ok(Expr::Index),
                    "total" => Ok(Expr::Total),
                    _ => Err(ParseError::new(at, "unknown $ variable")),
                };
            }
            _ => return Err(ParseError::new(at, "expected an identifier or function")),
        };
        if !self.eat_op("(") {
            let ext_name = format!("_{name}");
            return Ok(Expr::Member {
                base,
                name,
                ext_name,
            });
        }
        let mut args = Vec::new();
        if !self.eat_op(")") {
            loop {
                args.push(self.expression(0)?);
                if self.eat_op(")") {
                    break;
                }
                self.expect_op(",")?;
            }
        }
        let func = Func::from_name(&name)
            .ok_or_else(|| ParseError::new(at, &format!("unknown function '{name}'")))?;
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            return Err(ParseError::new(
                at,
                &format!("wrong number of arguments for '{name}'"),
            ));
        }
        if func.takes_type() {
            args = args
                .into_iter()
                .map(|a| type_arg(a).ok_or_else(|| ParseError::new(at, "expected a type name")))
                .collect::<Result<_, _>>()?;
        }
        Ok(Expr::Call { base, func, args })
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let at = self.here();
        let Some(token) = self.peek().cloned() else {
            return self.err("unexpected end of expression");
        };
        match token {
            Token::Number(text, frac) => {
                self.pos += 1;
                let value =
                    Decimal::parse(&text).ok_or_else(|| ParseError::new(at, "bad number"))?;
                // A quantity: number followed by a unit string or calendar word.
                let unit = match self.peek() {
                    Some(Token::Str(u)) => Some(u.clone()),
                    Some(Token::Ident(w)) => calendar_unit(w).map(|_| w.clone()),
                    _ => None,
                };
                if let Some(unit) = unit {
                    self.pos += 1;
                    return Ok(Expr::Literal(Literal::Quantity(Quantity::new(
                        value, &unit,
                    ))));
                }
                if frac {
                    Ok(Expr::Literal(Literal::Decimal(value)))
                } else {
                    match text.parse::<i64>() {
                        Ok(i) => Ok(Expr::Literal(Literal::Integer(i))),
                        Err(_) => Ok(Expr::Literal(Literal::Decimal(value))),
                    }
                }
            }
            Token::Str(s) => {
                self.pos += 1;
                Ok(Expr::Literal(Literal::String(s)))
            }
            Token::DateTime(text) => {
                self.pos += 1;
                let lit = if let Some(time) = text.strip_prefix('T') {
                    PartialDateTime::parse_time(time).map(Literal::Time)
                } else if text.contains('T') {
                    PartialDateTime::parse_date_time(&text, true).map(Literal::DateTime)
                } else {
                    PartialDateTime::parse_date_time(&text, false).map(Literal::Date)
                };
                lit.map(Expr::Literal)
                    .ok_or_else(|| ParseError::new(at, "bad date/time literal"))
            }
            Token::Constant(name) => {
                self.pos += 1;
                Ok(Expr::Constant(name))
            }
            Token::Op("(") => {
                self.pos += 1;
                let e = self.expression(0)?;
                self.expect_op(")")?;
                Ok(e)
            }
            Token::Op("{") => {
                self.pos += 1;
                self.expect_op("}")?;
                Ok(Expr::Empty)
            }
            Token::Ident(w) if w == "true" || w == "false" => {
                self.pos += 1;
                Ok(Expr::Literal(Literal::Boolean(w == "true")))
            }
            Token::Ident(_) | Token::Delimited(_) | Token::Var(_) => self.invocation(None),
            Token::Op(_) => self.err("unexpected operator"),
        }
    }
}

/// Reads a type specifier written as an argument (`Quantity`, `FHIR.Patient`).
fn type_arg(arg: Expr) -> Option<Expr> {
    let spec = match arg {
        Expr::Member {
            base: None, name, ..
        } => TypeSpec {
            namespace: None,
            name,
        },
        Expr::Member {
            base: Some(base),
            name,
            ..
        } => match *base {
            Expr::Member {
                base: None,
                name: ns,
                ..
            } => TypeSpec {
                namespace: Some(ns),
                name,
            },
            _ => return None,
        },
        _ => return None,
    };
    Some(Expr::TypeRef(spec))
}

/// Parses a whole expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: src.len(),
    };
    let expr = p.expression(0)?;
    if p.pos < p.tokens.len() {
        return p.err("unexpected token after expression");
    }
    Ok(expr)
}

//! Analysis conditions: the small expression language of an
//! AnalysisTemplate's `successCondition` and `failureCondition`.
//!
//! The subset of Argo Rollouts' expressions that makes sense over one
//! number per measurement: the variables `result` (the measured value) and
//! `stable` (the same measure taken on the stable pods, where the provider
//! has one), number literals, `true`/`false`, `+ - * /`, comparisons
//! `< <= > >= == !=`, `&&`, `||`, `!` (also spelt `and`, `or`, `not`),
//! unary `-` and parentheses. `result[0]`, `len(result)`, strings and
//! functions are refused with a message saying so.
//!
//! Design: a recursive-descent parser builds an [`Expr`] tree and checks
//! types as it goes (numbers and booleans never mix), remembering where
//! each sub-expression starts so every error names a column. [`Expr`]'s
//! `Display` prints the tree back with the fewest parentheses that keep its
//! shape; parsing the printed text gives the same tree (a property test
//! holds this). Evaluation is pure and short-circuits `&&` and `||`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use parse::parse_typed;

mod parse;

/// A variable a condition can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Var {
    /// The value measured for this metric.
    Result,
    /// The same measure on the stable pods, for providers that take one.
    Stable,
}

impl Var {
    pub fn name(self) -> &'static str {
        match self {
            Var::Result => "result",
            Var::Stable => "stable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`
    Not,
    /// `-`
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    /// Binding strength: higher binds tighter.
    fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div => 5,
        }
    }

    fn is_comparison(self) -> bool {
        self.precedence() == 3
    }
}

/// A parsed expression. Number literals are finite and never negative (a
/// minus sign is [`UnaryOp::Neg`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    Number(f64),
    Var(Var),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
}

/// What an expression computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Bool,
    Number,
}

impl Type {
    fn describe(self) -> &'static str {
        match self {
            Type::Bool => "true or false",
            Type::Number => "a number",
        }
    }
}

/// A value during evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Bool(bool),
    Number(f64),
}

/// A syntax or type error, at a column of the expression (from 1, in
/// characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}")]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

/// Why a condition could not be decided for one measurement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("the condition reads `{}`, which this measurement does not give", .0.name())]
    Missing(Var),
    #[error("the condition divides by zero")]
    DivisionByZero,
    /// Only for hand-built trees: parsed ones are type-checked.
    #[error("`{op}` cannot take {found}")]
    Type { op: &'static str, found: &'static str },
}

/// The variables of one measurement; `None` when the provider gives none.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Vars {
    pub result: Option<f64>,
    pub stable: Option<f64>,
}

impl Vars {
    /// Only `result`.
    pub fn result(result: f64) -> Self {
        Vars { result: Some(result), stable: None }
    }

    pub fn with_stable(self, stable: f64) -> Self {
        Vars { stable: Some(stable), ..self }
    }

    fn get(&self, var: Var) -> Option<f64> {
        match var {
            Var::Result => self.result,
            Var::Stable => self.stable,
        }
    }
}

impl Expr {
    /// Parses the syntax; types are checked but not required to be
    /// boolean at the top (see [`Condition::parse`] for that).
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        parse_typed(text).map(|(expr, _)| expr)
    }

    /// Evaluates, short-circuiting `&&` and `||` left to right.
    pub fn eval(&self, vars: &Vars) -> Result<Value, EvalError> {
        Ok(match self {
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Number(n) => Value::Number(*n),
            Expr::Var(v) => Value::Number(vars.get(*v).ok_or(EvalError::Missing(*v))?),
            Expr::Unary(UnaryOp::Not, e) => Value::Bool(!as_bool("!", e.eval(vars)?)?),
            Expr::Unary(UnaryOp::Neg, e) => Value::Number(-as_number("-", e.eval(vars)?)?),
            Expr::Binary(op, l, r) => {
                let s = op.symbol();
                match op {
                    BinaryOp::And | BinaryOp::Or => {
                        let left = as_bool(s, l.eval(vars)?)?;
                        // `false && _` and `true || _` are decided already.
                        if left == (*op == BinaryOp::Or) {
                            Value::Bool(left)
                        } else {
                            Value::Bool(as_bool(s, r.eval(vars)?)?)
                        }
                    }
                    BinaryOp::Eq | BinaryOp::Ne => {
                        let equal = match (l.eval(vars)?, r.eval(vars)?) {
                            (Value::Bool(a), Value::Bool(b)) => a == b,
                            (Value::Number(a), Value::Number(b)) => a == b,
                            _ => return Err(EvalError::Type { op: s, found: "a number and true or false" }),
                        };
                        Value::Bool(equal == (*op == BinaryOp::Eq))
                    }
                    _ => arithmetic(*op, as_number(s, l.eval(vars)?)?, as_number(s, r.eval(vars)?)?)?,
                }
            }
        })
    }

    /// Whether the expression reads `var`.
    pub fn uses(&self, var: Var) -> bool {
        match self {
            Expr::Var(v) => *v == var,
            Expr::Bool(_) | Expr::Number(_) => false,
            Expr::Unary(_, e) => e.uses(var),
            Expr::Binary(_, l, r) => l.uses(var) || r.uses(var),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Expr::Binary(op, ..) => op.precedence(),
            Expr::Unary(..) => 6,
            _ => 7,
        }
    }
}

fn as_bool(op: &'static str, v: Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(b),
        Value::Number(_) => Err(EvalError::Type { op, found: "a number" }),
    }
}

fn as_number(op: &'static str, v: Value) -> Result<f64, EvalError> {
    match v {
        Value::Number(n) => Ok(n),
        Value::Bool(_) => Err(EvalError::Type { op, found: "true or false" }),
    }
}

/// The operators over two numbers.
fn arithmetic(op: BinaryOp, a: f64, b: f64) -> Result<Value, EvalError> {
    Ok(match op {
        BinaryOp::Lt => Value::Bool(a < b),
        BinaryOp::Le => Value::Bool(a <= b),
        BinaryOp::Gt => Value::Bool(a > b),
        BinaryOp::Ge => Value::Bool(a >= b),
        BinaryOp::Add => Value::Number(a + b),
        BinaryOp::Sub => Value::Number(a - b),
        BinaryOp::Mul => Value::Number(a * b),
        BinaryOp::Div if b == 0.0 => return Err(EvalError::DivisionByZero),
        BinaryOp::Div => Value::Number(a / b),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Eq | BinaryOp::Ne => {
            return Err(EvalError::Type { op: op.symbol(), found: "numbers" })
        }
    })
}

impl fmt::Display for Expr {
    /// The fewest parentheses that keep the tree's shape; operators are
    /// left-associative and comparisons do not chain, so a right operand of
    /// equal precedence (and any comparison inside a comparison) is
    /// parenthesised.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Number(n) => write!(f, "{n}"),
            Expr::Var(v) => f.write_str(v.name()),
            Expr::Unary(op, e) => {
                f.write_str(if *op == UnaryOp::Not { "!" } else { "-" })?;
                write_operand(f, e, e.precedence() < 6)
            }
            Expr::Binary(op, l, r) => {
                let p = op.precedence();
                let comparison = op.is_comparison();
                write_operand(f, l, l.precedence() < p || (comparison && l.precedence() == p))?;
                write!(f, " {} ", op.symbol())?;
                write_operand(f, r, r.precedence() <= p)
            }
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

/// A checked `successCondition` or `failureCondition`: parses, and is true
/// or false. Equal when the trees are equal, however they were spelt.
#[derive(Debug, Clone)]
pub struct Condition {
    text: String,
    expr: Expr,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, ParseError> {
        let (expr, ty) = parse_typed(text)?;
        if ty != Type::Bool {
            return Err(ParseError {
                column: 1,
                message: format!("the condition is {}, not true or false", ty.describe()),
            });
        }
        Ok(Condition { text: text.to_string(), expr })
    }

    /// The condition as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    pub fn uses(&self, var: Var) -> bool {
        self.expr.uses(var)
    }

    /// Decides the condition for one measurement. A variable it reads that
    /// `vars` does not hold is an error, never a silent false.
    pub fn eval(&self, vars: &Vars) -> Result<bool, EvalError> {
        as_bool("condition", self.expr.eval(vars)?)
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

// Parsed trees hold no NaN (literals are finite), so equality is total.
impl Eq for Condition {}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Condition::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;

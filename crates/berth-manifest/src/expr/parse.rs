//! The lexer and the recursive-descent parser, which checks types as it
//! builds the tree so every error can name a column.

use super::{BinaryOp, Expr, ParseError, Type, UnaryOp, Var};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Op(&'static str),
    End,
}

#[derive(Debug, Clone)]
struct Lexed {
    token: Token,
    column: usize,
    text: String,
}

const OPERATORS: [&str; 16] = ["&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "(", ")", "="];

fn lex(text: &str) -> Result<Vec<Lexed>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                let mut j = i + 1;
                if j < chars.len() && matches!(chars[j], '+' | '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            let literal: String = chars[start..i].iter().collect();
            let value: f64 = literal.parse().unwrap_or(f64::INFINITY);
            if !value.is_finite() {
                return Err(ParseError { column, message: format!("the number {literal} is too large") });
            }
            out.push(Lexed { token: Token::Number(value), column, text: literal });
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            out.push(Lexed { token: Token::Name(name.clone()), column, text: name });
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            i += op.chars().count();
            out.push(Lexed { token: Token::Op(op), column, text: (*op).to_string() });
            continue;
        }
        let message = match c {
            '\'' | '"' | '`' => "strings are not supported: conditions compare numbers".to_string(),
            '[' => "unexpected '[': berth gives result as one number, so write result, not result[0]".to_string(),
            '&' => "unexpected '&': write && for \"and\"".to_string(),
            '|' => "unexpected '|': write || for \"or\"".to_string(),
            _ => format!("unexpected {c:?}"),
        };
        return Err(ParseError { column, message });
    }
    if out.len() > MAX_TOKENS {
        return Err(ParseError {
            column: out[MAX_TOKENS].column,
            message: format!("the condition is longer than {MAX_TOKENS} tokens"),
        });
    }
    out.push(Lexed { token: Token::End, column: chars.len() + 1, text: String::new() });
    Ok(out)
}

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;
/// Bounds the depth of left-leaning chains (`1 + 1 + ...`) the same way.
const MAX_TOKENS: usize = 512;

struct Parser {
    tokens: Vec<Lexed>,
    at: usize,
    depth: usize,
}

/// A sub-expression with its type and the column it starts at.
struct Typed {
    expr: Expr,
    ty: Type,
    column: usize,
}

pub(super) fn parse_typed(text: &str) -> Result<(Expr, Type), ParseError> {
    let mut p = Parser { tokens: lex(text)?, at: 0, depth: 0 };
    if p.peek().token == Token::End {
        return Err(ParseError { column: 1, message: "the condition is empty".into() });
    }
    let e = p.or()?;
    if p.peek().token != Token::End {
        return Err(p.unexpected());
    }
    Ok((e.expr, e.ty))
}

impl Parser {
    fn peek(&self) -> &Lexed {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Lexed {
        let t = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }

    /// The operator at the cursor, if it is one of `ops` (keyword spellings
    /// included).
    fn operator(&self, ops: &[(&str, BinaryOp)]) -> Option<BinaryOp> {
        let symbol = match &self.peek().token {
            Token::Op(op) => *op,
            Token::Name(n) if n == "and" => "&&",
            Token::Name(n) if n == "or" => "||",
            _ => return None,
        };
        ops.iter().find(|(s, _)| *s == symbol).map(|(_, op)| *op)
    }

    fn unexpected(&self) -> ParseError {
        let t = self.peek();
        let message = match &t.token {
            Token::End => "unexpected end of the condition".to_string(),
            Token::Op("=") => "unexpected '=': compare with ==".to_string(),
            Token::Op(_) | Token::Name(_) | Token::Number(_) => format!("unexpected '{}'", t.text),
        };
        ParseError { column: t.column, message }
    }

    fn or(&mut self) -> Result<Typed, ParseError> {
        self.left_assoc(&[("||", BinaryOp::Or)], Self::and)
    }

    fn and(&mut self) -> Result<Typed, ParseError> {
        self.left_assoc(&[("&&", BinaryOp::And)], Self::comparison)
    }

    fn comparison(&mut self) -> Result<Typed, ParseError> {
        const OPS: [(&str, BinaryOp); 6] = [
            ("==", BinaryOp::Eq),
            ("!=", BinaryOp::Ne),
            ("<", BinaryOp::Lt),
            ("<=", BinaryOp::Le),
            (">", BinaryOp::Gt),
            (">=", BinaryOp::Ge),
        ];
        let left = self.additive()?;
        let Some(op) = self.operator(&OPS) else {
            return Ok(left);
        };
        let op_column = self.next().column;
        let right = self.additive()?;
        if self.operator(&OPS).is_some() {
            let t = self.peek();
            return Err(ParseError {
                column: t.column,
                message: format!("comparisons do not chain ('{}' after '{}'): join them with &&", t.text, op.symbol()),
            });
        }
        self.combine(op, op_column, left, right)
    }

    fn additive(&mut self) -> Result<Typed, ParseError> {
        self.left_assoc(&[("+", BinaryOp::Add), ("-", BinaryOp::Sub)], Self::multiplicative)
    }

    fn multiplicative(&mut self) -> Result<Typed, ParseError> {
        self.left_assoc(&[("*", BinaryOp::Mul), ("/", BinaryOp::Div)], Self::unary)
    }

    fn left_assoc(
        &mut self,
        ops: &[(&str, BinaryOp)],
        operand: fn(&mut Self) -> Result<Typed, ParseError>,
    ) -> Result<Typed, ParseError> {
        let mut left = operand(self)?;
        while let Some(op) = self.operator(ops) {
            let op_column = self.next().column;
            let right = operand(self)?;
            left = self.combine(op, op_column, left, right)?;
        }
        Ok(left)
    }

    /// Builds `left op right`, checking the operand types.
    fn combine(&mut self, op: BinaryOp, op_column: usize, left: Typed, right: Typed) -> Result<Typed, ParseError> {
        let (want, ty) = match op {
            BinaryOp::And | BinaryOp::Or => (Some(Type::Bool), Type::Bool),
            BinaryOp::Eq | BinaryOp::Ne => (None, Type::Bool),
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => (Some(Type::Number), Type::Bool),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => (Some(Type::Number), Type::Number),
        };
        match want {
            Some(want) => {
                for (side, operand) in [("left", &left), ("right", &right)] {
                    if operand.ty != want {
                        return Err(ParseError {
                            column: operand.column,
                            message: format!(
                                "'{}' needs {} on both sides, its {side} side is {}",
                                op.symbol(),
                                plural(want),
                                operand.ty.describe()
                            ),
                        });
                    }
                }
            }
            None if left.ty != right.ty => {
                return Err(ParseError {
                    column: op_column,
                    message: format!("'{}' compares {} with {}", op.symbol(), left.ty.describe(), right.ty.describe()),
                })
            }
            None => {}
        }
        Ok(Typed { expr: Expr::Binary(op, Box::new(left.expr), Box::new(right.expr)), ty, column: left.column })
    }

    fn unary(&mut self) -> Result<Typed, ParseError> {
        let t = self.peek().clone();
        let op = match &t.token {
            Token::Op("!") => UnaryOp::Not,
            Token::Name(n) if n == "not" => UnaryOp::Not,
            Token::Op("-") => UnaryOp::Neg,
            _ => return self.primary(),
        };
        self.next();
        self.descend(t.column)?;
        let operand = self.unary()?;
        self.depth -= 1;
        let want = if op == UnaryOp::Not { Type::Bool } else { Type::Number };
        if operand.ty != want {
            return Err(ParseError {
                column: operand.column,
                message: format!("'{}' needs {}, this is {}", t.text, want.describe(), operand.ty.describe()),
            });
        }
        Ok(Typed { expr: Expr::Unary(op, Box::new(operand.expr)), ty: want, column: t.column })
    }

    fn descend(&mut self, column: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError { column, message: format!("the condition nests deeper than {MAX_DEPTH} levels") });
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Typed, ParseError> {
        let t = self.peek().clone();
        let (expr, ty) = match &t.token {
            Token::Number(n) => (Expr::Number(*n), Type::Number),
            Token::Name(n) => match n.as_str() {
                "true" => (Expr::Bool(true), Type::Bool),
                "false" => (Expr::Bool(false), Type::Bool),
                "result" => (Expr::Var(Var::Result), Type::Number),
                "stable" => (Expr::Var(Var::Stable), Type::Number),
                _ => return Err(self.unknown_name(n, t.column)),
            },
            Token::Op("(") => {
                self.next();
                self.descend(t.column)?;
                let inner = self.or()?;
                self.depth -= 1;
                if self.peek().token != Token::Op(")") {
                    return Err(match self.peek().token {
                        Token::End => ParseError {
                            column: self.peek().column,
                            message: format!("the '(' at column {} is never closed", t.column),
                        },
                        _ => self.unexpected(),
                    });
                }
                self.next();
                return Ok(Typed { column: t.column, ..inner });
            }
            _ => return Err(self.unexpected()),
        };
        self.next();
        if let Token::Op("(") = self.peek().token {
            return Err(ParseError {
                column: t.column,
                message: format!("'{}' is not a function; berth's conditions have no functions", t.text),
            });
        }
        Ok(Typed { expr, ty, column: t.column })
    }

    fn unknown_name(&mut self, name: &str, column: usize) -> ParseError {
        self.next();
        let message = match self.peek().token {
            Token::Op("(") => format!("{name}() is not supported: berth's conditions have no functions"),
            _ => format!("unknown name '{name}': conditions read result and stable"),
        };
        ParseError { column, message }
    }
}

fn plural(t: Type) -> &'static str {
    match t {
        Type::Bool => "true or false",
        Type::Number => "numbers",
    }
}

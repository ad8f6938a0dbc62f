//! The `-l` selector grammar, as kubectl reads it:
//!
//! ```text
//! selector    := "" | requirement ("," requirement)*
//! requirement := "!" KEY | KEY | KEY ("=" | "==" | "!=") VALUE?
//!              | KEY ("in" | "notin") "(" [VALUE? ("," VALUE?)*] ")"
//! ```
//!
//! Identifiers run until whitespace or one of `=!(),<>`.

use super::{Operator, Requirement, Selector, SelectorError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {input:?}: at character {position}, expected {expected}, found {found}; write requirements like app=web,tier in (a,b),!legacy")]
pub struct SyntaxError {
    pub input: String,
    pub position: usize,
    pub expected: &'static str,
    pub found: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Equals,
    DoubleEquals,
    NotEquals,
    Bang,
    Open,
    Close,
    Comma,
    Compare(char),
    End,
}

fn special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '<' | '>')
}

struct Lexer<'a> {
    input: &'a str,
    chars: Vec<char>,
    at: usize,
}

impl Lexer<'_> {
    /// The next token and the character position it starts at.
    fn next(&mut self) -> (Token, usize) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
        let start = self.at;
        let Some(&c) = self.chars.get(self.at) else {
            return (Token::End, start);
        };
        self.at += 1;
        let next_is_eq = self.chars.get(self.at) == Some(&'=');
        let token = match c {
            '=' if next_is_eq => {
                self.at += 1;
                Token::DoubleEquals
            }
            '=' => Token::Equals,
            '!' if next_is_eq => {
                self.at += 1;
                Token::NotEquals
            }
            '!' => Token::Bang,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '<' | '>' => Token::Compare(c),
            _ => {
                while self.chars.get(self.at).is_some_and(|c| !c.is_whitespace() && !special(*c)) {
                    self.at += 1;
                }
                Token::Ident(self.chars[start..self.at].iter().collect())
            }
        };
        (token, start)
    }

    fn peek(&mut self) -> (Token, usize) {
        let at = self.at;
        let t = self.next();
        self.at = at;
        t
    }

    fn error(&self, position: usize, expected: &'static str, found: &Token) -> SelectorError {
        let found = match found {
            Token::Ident(s) => format!("{s:?}"),
            Token::Equals => "\"=\"".into(),
            Token::DoubleEquals => "\"==\"".into(),
            Token::NotEquals => "\"!=\"".into(),
            Token::Bang => "\"!\"".into(),
            Token::Open => "\"(\"".into(),
            Token::Close => "\")\"".into(),
            Token::Comma => "\",\"".into(),
            Token::Compare(c) => format!("\"{c}\" (numeric comparisons are not supported)"),
            Token::End => "the end".into(),
        };
        SelectorError::Syntax(SyntaxError { input: self.input.to_string(), position, expected, found })
    }
}

pub(super) fn parse(input: &str) -> Result<Selector, SelectorError> {
    let mut lx = Lexer { input, chars: input.chars().collect(), at: 0 };
    let mut requirements = Vec::new();
    if lx.peek().0 == Token::End {
        return Ok(Selector::default());
    }
    loop {
        requirements.push(requirement(&mut lx)?);
        match lx.next() {
            (Token::End, _) => break,
            (Token::Comma, _) => {}
            (t, at) => return Err(lx.error(at, "',' or the end", &t)),
        }
    }
    Ok(Selector::new(requirements))
}

fn requirement(lx: &mut Lexer<'_>) -> Result<Requirement, SelectorError> {
    let (t, at) = lx.next();
    if t == Token::Bang {
        return match lx.next() {
            (Token::Ident(key), _) => Requirement::try_new(key, Operator::DoesNotExist, []),
            (t, at) => Err(lx.error(at, "a label key after '!'", &t)),
        };
    }
    let Token::Ident(key) = t else {
        return Err(lx.error(at, "a label key", &t));
    };
    let (op, at) = lx.peek();
    match op {
        Token::End | Token::Comma => Requirement::try_new(key, Operator::Exists, []),
        Token::Equals | Token::DoubleEquals | Token::NotEquals => {
            lx.next();
            let operator = if op == Token::NotEquals { Operator::NotEquals } else { Operator::Equals };
            let value = match lx.peek() {
                (Token::Ident(v), _) => {
                    lx.next();
                    v
                }
                (Token::End | Token::Comma, _) => String::new(),
                (t, at) => return Err(lx.error(at, "a label value", &t)),
            };
            Requirement::try_new(key, operator, [value])
        }
        Token::Ident(word) if word == "in" || word == "notin" => {
            lx.next();
            let operator = if word == "in" { Operator::In } else { Operator::NotIn };
            let values = value_list(lx)?;
            Requirement::try_new(key, operator, values)
        }
        t => Err(lx.error(at, "'=', '==', '!=', 'in', 'notin', ',' or the end", &t)),
    }
}

fn value_list(lx: &mut Lexer<'_>) -> Result<Vec<String>, SelectorError> {
    match lx.next() {
        (Token::Open, _) => {}
        (t, at) => return Err(lx.error(at, "'(' opening the list of values", &t)),
    }
    let mut values = Vec::new();
    if lx.peek().0 == Token::Close {
        lx.next();
        return Ok(values);
    }
    loop {
        let value = match lx.peek() {
            (Token::Ident(v), _) => {
                lx.next();
                v
            }
            (Token::Comma | Token::Close, _) => String::new(),
            (t, at) => return Err(lx.error(at, "a label value", &t)),
        };
        values.push(value);
        match lx.next() {
            (Token::Comma, _) => {}
            (Token::Close, _) => return Ok(values),
            (t, at) => return Err(lx.error(at, "',' or ')'", &t)),
        }
    }
}

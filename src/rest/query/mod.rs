//! The typed AST of a REST request's query string, and its parser.
//!
//! - [`select`]: the `select=` grammar (columns, aliases, casts, JSON paths,
//!   aggregates, embeds with hints, `!inner`/`!left`, spreads).
//! - [`filter`]: filter values (`[not.]op[(modifier)].value`), `or=(…)` /
//!   `and=(…)` trees, `order=`.
//! - [`params`]: the whole query string split into select, filters, order,
//!   ranges, `on_conflict`, `columns` and RPC arguments.
//!
//! Invariant: parsing never panics, whatever the input (a property test
//! drives it with arbitrary strings), and every limit in [`Limits`] turns
//! into a PGRST100 error rather than unbounded work.

pub mod filter;
pub mod params;
pub mod select;

pub use params::{parse_query, ApiQuery, Range};

use crate::rest::errors::RestError;

/// A column reference with an optional JSON path: `data->a->>b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The column name.
    pub name: String,
    /// JSON path steps, outermost first.
    pub json: Vec<JsonStep>,
}

impl Field {
    /// A plain column.
    pub fn col(name: &str) -> Field {
        Field { name: name.to_owned(), json: Vec::new() }
    }

    /// The name PostgREST gives this field in output: the last JSON key, or the column.
    pub fn output_name(&self) -> String {
        match self.json.last() {
            Some(step) => step.key.clone(),
            None => self.name.clone(),
        }
    }
}

/// One `->` / `->>` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStep {
    /// `->>` (text) rather than `->` (json).
    pub as_text: bool,
    /// The key, or an array index when it parses as an integer.
    pub key: String,
}

impl JsonStep {
    /// The key as an array index, if it is one.
    pub fn index(&self) -> Option<i32> {
        self.key.parse().ok()
    }
}

/// Limits on what one query string may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Items in an `in.(…)` list (and quantified `{…}` lists).
    pub max_in_list: usize,
    /// Nesting depth of `or`/`and` groups.
    pub max_logic_depth: usize,
    /// Nesting depth of embedded resources.
    pub max_embed_depth: usize,
    /// Items in a `select`, counted over all embed levels.
    pub max_select_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_in_list: 5000, max_logic_depth: 10, max_embed_depth: 8, max_select_items: 500 }
    }
}

/// A tiny cursor over characters, shared by the parsers.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    chars: Vec<char>,
    pos: usize,
    /// What is being parsed, for error messages.
    pub what: &'a str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &str, what: &'a str) -> Cursor<'a> {
        Cursor { chars: s.chars().collect(), pos: 0, what }
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        if self.chars.len() >= self.pos + n && s.chars().zip(&self.chars[self.pos..]).all(|(a, b)| a == *b) {
            self.pos += n;
            true
        } else {
            false
        }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    pub(crate) fn rest(&self) -> String {
        self.chars.get(self.pos..).unwrap_or_default().iter().collect()
    }

    pub(crate) fn error(&self, expected: &str) -> RestError {
        let found = match self.peek() {
            Some(c) => format!("unexpected \"{c}\""),
            None => "unexpected end of input".to_owned(),
        };
        RestError::parse(
            format!("\"failed to parse {} parameter ({})\"", self.what, self.chars.iter().collect::<String>()),
            format!("{found} expecting {expected} at position {}", self.pos + 1),
        )
    }

    /// A bare name: anything but the grammar's punctuation. `-` is allowed
    /// unless it starts an arrow. A double-quoted name keeps everything
    /// (no escapes, as PostgREST).
    pub(crate) fn name(&mut self) -> Result<String, RestError> {
        if self.eat('"') {
            let mut s = String::new();
            loop {
                match self.bump() {
                    Some('"') => break,
                    Some(c) => s.push(c),
                    None => return Err(self.error("closing quote")),
                }
            }
            if s.is_empty() {
                return Err(self.error("a name"));
            }
            return Ok(s);
        }
        let mut s = String::new();
        while let Some(c) = self.peek() {
            let arrow = c == '-' && self.peek_at(1) == Some('>');
            if arrow || matches!(c, ',' | '.' | ':' | '(' | ')' | '!' | '"' | '*' | '>') || c.is_whitespace() {
                break;
            }
            s.push(c);
            self.pos += 1;
        }
        if s.is_empty() {
            return Err(self.error("a name"));
        }
        Ok(s)
    }

    /// A field: a name then `->`/`->>` steps.
    pub(crate) fn field(&mut self) -> Result<Field, RestError> {
        let name = self.name()?;
        let mut json = Vec::new();
        while self.eat_str("->") {
            let as_text = self.eat('>');
            let key = if self.peek() == Some('-') {
                self.bump();
                let n = self.name()?;
                if n.parse::<i32>().is_err() {
                    return Err(self.error("an array index"));
                }
                format!("-{n}")
            } else {
                self.name()?
            };
            json.push(JsonStep { as_text, key });
        }
        Ok(Field { name, json })
    }
}

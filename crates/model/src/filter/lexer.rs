//! Splits a `$filter` / `$orderby` string into tokens carrying their
//! character positions.

use super::{ParseError, MAX_INPUT_CHARS};
use rust_decimal::Decimal;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    LParen,
    RParen,
    Comma,
    /// Names joined by `/`; keywords are one-name paths.
    Path(Vec<String>),
    Str(String),
    Number(Decimal),
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub pos: usize,
}

impl Token {
    /// The keyword this token spells, lowercased, if it is a one-name path.
    pub fn keyword(&self) -> Option<String> {
        match &self.kind {
            TokenKind::Path(names) if names.len() == 1 => Some(names[0].to_ascii_lowercase()),
            _ => None,
        }
    }

    /// How the token is named in error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            TokenKind::LParen => "'('".to_owned(),
            TokenKind::RParen => "')'".to_owned(),
            TokenKind::Comma => "','".to_owned(),
            TokenKind::Path(names) => format!("'{}'", names.join("/")),
            TokenKind::Str(s) => format!("string '{s}'"),
            TokenKind::Number(n) => format!("number {n}"),
        }
    }
}

/// The tokens of `input` and its length in characters.
pub(crate) fn tokenize(input: &str) -> Result<(Vec<Token>, usize), ParseError> {
    let chars: Vec<char> = input.chars().collect();
    if chars.len() > MAX_INPUT_CHARS {
        return Err(ParseError::new(MAX_INPUT_CHARS, format!("input is longer than {MAX_INPUT_CHARS} characters")));
    }
    let mut lexer = Lexer { chars, at: 0 };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push(token);
    }
    Ok((tokens, lexer.chars.len()))
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next_token(&mut self) -> Result<Option<Token>, ParseError> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
        let pos = self.at;
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let kind = match c {
            '(' | ')' | ',' => {
                self.at += 1;
                match c {
                    '(' => TokenKind::LParen,
                    ')' => TokenKind::RParen,
                    _ => TokenKind::Comma,
                }
            }
            '\'' => self.string()?,
            '-' | '0'..='9' => self.number()?,
            c if is_name_start(c) => self.path()?,
            c => return Err(ParseError::new(pos, format!("unexpected character '{c}'"))),
        };
        Ok(Some(Token { kind, pos }))
    }

    /// A quoted string; `''` inside stands for one quote.
    fn string(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(ParseError::new(start, "unterminated string literal")),
                Some('\'') if self.chars.get(self.at + 1) == Some(&'\'') => {
                    text.push('\'');
                    self.at += 2;
                }
                Some('\'') => {
                    self.at += 1;
                    return Ok(TokenKind::Str(text));
                }
                // No stored text holds U+0000 (writes refuse it), and
                // PostgreSQL cannot compare with it: refused on every backend.
                Some('\0') => return Err(ParseError::new(self.at, "U+0000 is not allowed in a string literal")),
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - from
    }

    /// `-?digits(.digits)?`, parsed exactly as a decimal.
    fn number(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.at;
        if self.peek() == Some('-') {
            self.at += 1;
        }
        let mut well_formed = self.digits() > 0;
        if self.peek() == Some('.') {
            self.at += 1;
            well_formed &= self.digits() > 0;
        }
        if !well_formed || self.peek().is_some_and(|c| is_name_char(c) || c == '.') {
            return Err(ParseError::new(start, "malformed number"));
        }
        let text: String = self.chars[start..self.at].iter().collect();
        Decimal::from_str_exact(&text)
            .map(TokenKind::Number)
            .map_err(|_| ParseError::new(start, format!("number {text} is out of range")))
    }

    /// Names joined by `/`, with no spaces around the slashes.
    fn path(&mut self) -> Result<TokenKind, ParseError> {
        let mut names = vec![self.name()];
        while self.peek() == Some('/') {
            self.at += 1;
            if !self.peek().is_some_and(is_name_start) {
                return Err(ParseError::new(self.at, "expected a field name after '/'"));
            }
            names.push(self.name());
        }
        Ok(TokenKind::Path(names))
    }

    fn name(&mut self) -> String {
        let from = self.at;
        while self.peek().is_some_and(is_name_char) {
            self.at += 1;
        }
        self.chars[from..self.at].iter().collect()
    }
}

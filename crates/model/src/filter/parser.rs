//! Recursive-descent parser of `$filter` and `$orderby`.

use super::lexer::{tokenize, Token, TokenKind};
use super::{CmpOp, Expr, FieldPath, Literal, OrderKey, ParseError, MAX_DEPTH};

/// Words that cannot be used as a one-name field path.
const RESERVED: [&str; 6] = ["and", "or", "not", "true", "false", "null"];

/// Parses a `$filter` expression.
///
/// ```
/// use sharehub_model::filter::{parse_filter, CmpOp, Expr, Literal};
/// let expr = parse_filter("is_lead eq true").unwrap();
/// assert!(matches!(expr, Expr::Compare { op: CmpOp::Eq, value: Literal::Bool(true), .. }));
/// ```
pub fn parse_filter(input: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser::new(input)?;
    if parser.peek().is_none() {
        return Err(ParseError::new(0, "empty filter"));
    }
    let expr = parser.or()?;
    parser.expect_end("the end of the filter")?;
    Ok(expr)
}

/// Parses a `$orderby`: comma-separated field paths, each optionally
/// followed by `asc` (the default) or `desc`.
pub fn parse_orderby(input: &str) -> Result<Vec<OrderKey>, ParseError> {
    let mut parser = Parser::new(input)?;
    if parser.peek().is_none() {
        return Err(ParseError::new(0, "empty $orderby"));
    }
    let mut keys = Vec::new();
    loop {
        let field = parser.field()?;
        let descending = match parser.peek().and_then(Token::keyword).as_deref() {
            Some("asc") => parser.advance_is(false),
            Some("desc") => parser.advance_is(true),
            _ => false,
        };
        keys.push(OrderKey { field, descending });
        if !parser.eat(&TokenKind::Comma) {
            break;
        }
    }
    parser.expect_end("',' or the end of the $orderby")?;
    Ok(keys)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Length of the input in characters, the position of "the end".
    end: usize,
    depth: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Self, ParseError> {
        let (tokens, end) = tokenize(input)?;
        Ok(Self { tokens, next: 0, end, depth: 0 })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    /// Skips the next token and returns `value`.
    fn advance_is(&mut self, value: bool) -> bool {
        self.next += 1;
        value
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        let found = self.peek().is_some_and(|t| &t.kind == kind);
        if found {
            self.next += 1;
        }
        found
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let found = self.peek().and_then(Token::keyword).as_deref() == Some(word);
        if found {
            self.next += 1;
        }
        found
    }

    /// Position of the next token, or the end of the input.
    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.pos)
    }

    /// "found X" or "found the end", for error messages.
    fn found(&self) -> String {
        self.peek().map_or_else(|| "the end".to_owned(), |t| t.describe())
    }

    fn expect_end(&self, expected: &str) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(ParseError::new(t.pos, format!("expected {expected}, found {}", t.describe()))),
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while self.eat_keyword("and") {
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::new(self.here(), format!("expression nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        let expr = self.unary_inner();
        self.depth -= 1;
        expr
    }

    fn unary_inner(&mut self) -> Result<Expr, ParseError> {
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let open = self.here();
        if self.eat(&TokenKind::LParen) {
            let inner = self.or()?;
            if !self.eat(&TokenKind::RParen) {
                return Err(ParseError::new(
                    self.here(),
                    format!("expected ')' to close '(' at position {open}, found {}", self.found()),
                ));
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let field = self.field()?;
        let op = self.operator()?;
        let value = self.literal(op)?;
        Ok(Expr::Compare { field, op, value })
    }

    fn field(&mut self) -> Result<FieldPath, ParseError> {
        let position = self.here();
        let found = self.found();
        let reserved = self.peek().and_then(Token::keyword).is_some_and(|k| RESERVED.contains(&k.as_str()));
        match self.peek().map(|t| &t.kind) {
            Some(TokenKind::Path(names)) if !reserved => {
                let path = FieldPath(names.clone());
                self.next += 1;
                Ok(path)
            }
            _ => Err(ParseError::new(position, format!("expected a field name, found {found}"))),
        }
    }

    fn operator(&mut self) -> Result<CmpOp, ParseError> {
        let position = self.here();
        let op = self.peek().and_then(Token::keyword).and_then(|k| CmpOp::from_keyword(&k));
        match op {
            Some(op) => {
                self.next += 1;
                Ok(op)
            }
            None if matches!(self.peek().map(|t| &t.kind), Some(TokenKind::Path(_))) => Err(ParseError::new(
                position,
                format!("unknown operator {}; expected eq, ne, gt, ge, lt or le", self.found()),
            )),
            None => Err(ParseError::new(
                position,
                format!("expected an operator (eq, ne, gt, ge, lt, le), found {}", self.found()),
            )),
        }
    }

    fn literal(&mut self, op: CmpOp) -> Result<Literal, ParseError> {
        let position = self.here();
        let found = self.found();
        let literal = match self.advance().map(|t| (t.keyword(), t.kind)) {
            // A date-time written with an offset compares with stored ones,
            // which are kept in UTC with `Z`: normalise it the same way.
            Some((_, TokenKind::Str(s))) => Some(Literal::String(crate::schema::canonical_date_time(&s).unwrap_or(s))),
            Some((_, TokenKind::Number(n))) => Some(Literal::Number(n)),
            Some((Some(k), _)) if k == "true" => Some(Literal::Bool(true)),
            Some((Some(k), _)) if k == "false" => Some(Literal::Bool(false)),
            Some((Some(k), _)) if k == "null" => Some(Literal::Null),
            _ => None,
        };
        literal.ok_or_else(|| {
            ParseError::new(position, format!("expected a value after '{}', found {found}", op.keyword()))
        })
    }
}

//! Sigma `condition` expressions: parsed into a typed tree, then resolved
//! against the rule's search identifiers.
//!
//! Grammar (Sigma 2.0, precedence low to high):
//! `or` < `and` < `not` < `( … )`, `1 of X*`, `all of X*`, `1 of them`,
//! `all of them`, identifiers. The deprecated aggregation pipe (`| count()`)
//! and `near` are rejected here with the correlation rule to use instead.

use std::fmt;

/// A condition after parsing, before identifiers are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Ident(String),
    /// `1 of pattern` (`any == false`: `all of pattern`); `None` is `them`.
    Of {
        all: bool,
        pattern: Option<String>,
    },
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A condition resolved to search indices.
#[derive(Debug, Clone)]
pub enum Cond {
    Search(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError(pub String);

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    Word(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, ConditionError> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            out.push(Tok::LParen);
            chars.next();
        } else if c == ')' {
            out.push(Tok::RParen);
            chars.next();
        } else if c == '|' {
            return Err(ConditionError(format!(
                "the aggregation pipe `{}` is deprecated Sigma v1 syntax; write a Sigma correlation rule (type: event_count or value_count) instead",
                s[i..].trim()
            )));
        } else if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') {
            let mut w = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') {
                    w.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Word(w));
        } else {
            return Err(ConditionError(format!("unexpected character `{c}` at offset {i}")));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn or(&mut self) -> Result<Expr, ConditionError> {
        let mut items = vec![self.and()?];
        while is_kw(self.peek(), "or") {
            self.next();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Expr::Or(items)
        })
    }
    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut items = vec![self.not()?];
        while is_kw(self.peek(), "and") {
            self.next();
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Expr::And(items)
        })
    }
    fn not(&mut self) -> Result<Expr, ConditionError> {
        if is_kw(self.peek(), "not") {
            self.next();
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Expr, ConditionError> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err(ConditionError("missing `)`".into())),
                }
            }
            Some(Tok::Word(w)) => {
                let quant = if w == "1" || w.eq_ignore_ascii_case("any") {
                    Some(false)
                } else if w.eq_ignore_ascii_case("all") {
                    Some(true)
                } else {
                    None
                };
                if let Some(all) = quant
                    && is_kw(self.peek(), "of")
                {
                    self.next();
                    return match self.next() {
                        Some(Tok::Word(p)) if p.eq_ignore_ascii_case("them") => Ok(Expr::Of { all, pattern: None }),
                        Some(Tok::Word(p)) => Ok(Expr::Of { all, pattern: Some(p) }),
                        _ => Err(ConditionError(format!(
                            "`{w} of` must be followed by a name pattern or `them`"
                        ))),
                    };
                }
                if ["and", "or", "not", "of", "them"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
                {
                    return Err(ConditionError(format!("unexpected keyword `{w}`")));
                }
                if w.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ConditionError(format!(
                        "`{w} of` is not supported: only `1 of` and `all of` are Sigma"
                    )));
                }
                Ok(Expr::Ident(w))
            }
            Some(Tok::RParen) => Err(ConditionError("unexpected `)`".into())),
            None => Err(ConditionError("unexpected end of condition".into())),
        }
    }
}

/// Parses one condition string.
pub fn parse(s: &str) -> Result<Expr, ConditionError> {
    let toks = lex(s)?;
    if toks
        .iter()
        .any(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("near")))
    {
        return Err(ConditionError(
            "`near` is deprecated Sigma v1 syntax; write a Sigma correlation rule of type `temporal` instead".into(),
        ));
    }
    if toks.is_empty() {
        return Err(ConditionError("empty condition".into()));
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(ConditionError(format!(
            "unexpected `{:?}` after the end of the condition",
            p.toks[p.pos]
        )));
    }
    Ok(e)
}

fn glob_match(pattern: &str, name: &str) -> bool {
    // Identifier patterns only use `*` (and rarely `?`).
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => rec(&p[1..], n) || (!n.is_empty() && rec(p, &n[1..])),
            (Some(b'?'), Some(_)) => rec(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &n[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), name.as_bytes())
}

/// Resolves identifiers to indices in `names`.
pub fn resolve(e: &Expr, names: &[String]) -> Result<Cond, ConditionError> {
    Ok(match e {
        Expr::Ident(n) => match names.iter().position(|x| x == n) {
            Some(i) => Cond::Search(i),
            None => {
                return Err(ConditionError(format!(
                    "condition names `{n}`, which the detection does not define"
                )));
            }
        },
        Expr::Of { all, pattern } => {
            let picked: Vec<Cond> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| match pattern {
                    // `them` excludes identifiers starting with `_` (Sigma spec).
                    None => !n.starts_with('_'),
                    Some(p) => glob_match(p, n),
                })
                .map(|(i, _)| Cond::Search(i))
                .collect();
            if picked.is_empty() {
                return Err(ConditionError(format!(
                    "`{} of {}` matches no search identifier",
                    if *all { "all" } else { "1" },
                    pattern.as_deref().unwrap_or("them")
                )));
            }
            if *all { Cond::And(picked) } else { Cond::Or(picked) }
        }
        Expr::Not(x) => Cond::Not(Box::new(resolve(x, names)?)),
        Expr::And(xs) => Cond::And(xs.iter().map(|x| resolve(x, names)).collect::<Result<_, _>>()?),
        Expr::Or(xs) => Cond::Or(xs.iter().map(|x| resolve(x, names)).collect::<Result<_, _>>()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Expr {
        Expr::Ident(s.into())
    }

    #[test]
    fn precedence_not_and_or() {
        assert_eq!(
            parse("a or b and not c").unwrap(),
            Expr::Or(vec![id("a"), Expr::And(vec![id("b"), Expr::Not(Box::new(id("c")))])])
        );
        assert_eq!(
            parse("(a or b) and c").unwrap(),
            Expr::And(vec![Expr::Or(vec![id("a"), id("b")]), id("c")])
        );
    }

    #[test]
    fn quantifiers() {
        assert_eq!(
            parse("selection and not 1 of filter*").unwrap(),
            Expr::And(vec![
                id("selection"),
                Expr::Not(Box::new(Expr::Of {
                    all: false,
                    pattern: Some("filter*".into())
                }))
            ])
        );
        assert_eq!(
            parse("all of them").unwrap(),
            Expr::Of {
                all: true,
                pattern: None
            }
        );
    }

    #[test]
    fn deprecated_constructs_are_named() {
        let e = parse("selection | count(userIdentity.arn) > 10").unwrap_err();
        assert!(e.0.contains("aggregation pipe"), "{e}");
        assert!(e.0.contains("correlation"), "{e}");
        assert!(parse("a near b").unwrap_err().0.contains("temporal"));
    }

    #[test]
    fn resolve_them_skips_underscore_names() {
        let names = vec!["sel".to_string(), "_helper".to_string(), "filter_a".to_string()];
        match resolve(&parse("1 of them").unwrap(), &names).unwrap() {
            Cond::Or(v) => assert_eq!(v.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(resolve(&parse("1 of nothing*").unwrap(), &names).is_err());
        assert!(resolve(&parse("missing").unwrap(), &names).is_err());
    }
}

//! Sigma conditions: `not` binds tighter than `and`, `and` tighter than `or`;
//! `1 of sel*`, `all of sel*`, `1 of them`, `all of them` (and `any of` for
//! `1 of`) select search identifiers by a pattern anchored at both ends, where
//! `*` is any run of characters. `them` and patterns never select identifiers
//! that start with `_`. A selector that selects nothing is dropped from its
//! parent, so `sel and not 1 of filter*` is just `sel` when there is no filter.

/// A parsed condition, before identifiers are resolved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Condition {
    Identifier(String),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    OneOf(String),
    AllOf(String),
}

/// Longest condition accepted, in characters.
const MAX_CONDITION_LEN: usize = 8_192;
/// Deepest nesting of parentheses and `not`.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, ch)) = chars.peek() {
        match ch {
            '(' => {
                tokens.push(Token::Open);
                chars.next();
            }
            ')' => {
                tokens.push(Token::Close);
                chars.next();
            }
            ch if ch.is_whitespace() => {
                chars.next();
            }
            ch if is_word_char(ch) => {
                let mut end = start;
                while let Some(&(index, ch)) = chars.peek() {
                    if !is_word_char(ch) {
                        break;
                    }
                    end = index + ch.len_utf8();
                    chars.next();
                }
                tokens.push(Token::Word(text[start..end].to_owned()));
            }
            '|' => {
                return Err("aggregations (`| count() ...`) are Sigma 1 syntax: write a correlation rule".into());
            }
            other => return Err(format!("unexpected character {other:?} in condition")),
        }
    }
    Ok(tokens)
}

fn is_word_char(ch: char) -> bool {
    ch.is_alphanumeric() || matches!(ch, '_' | '-' | '*' | '.')
}

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Condition {
    pub(crate) fn parse(text: &str) -> Result<Condition, String> {
        if text.len() > MAX_CONDITION_LEN {
            return Err(format!("condition is longer than {MAX_CONDITION_LEN} characters"));
        }
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err("condition is empty".into());
        }
        let mut parser = Parser { tokens, at: 0, depth: 0 };
        let condition = parser.or()?;
        if let Some(token) = parser.tokens.get(parser.at) {
            return Err(format!("unexpected {} in condition", describe(token)));
        }
        Ok(condition)
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(word) => format!("{word:?}"),
        Token::Open => "\"(\"".into(),
        Token::Close => "\")\"".into(),
    }
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.at) {
            Some(Token::Word(word)) => Some(word),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut terms = vec![self.and()?];
        while self.peek_word().is_some_and(|word| is_keyword(word, "or")) {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Condition::Or(terms) })
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut terms = vec![self.not()?];
        while self.peek_word().is_some_and(|word| is_keyword(word, "and")) {
            self.at += 1;
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Condition::And(terms) })
    }

    fn not(&mut self) -> Result<Condition, String> {
        if self.peek_word().is_some_and(|word| is_keyword(word, "not")) {
            self.at += 1;
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("condition is nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Condition, String> {
        let token = self.tokens.get(self.at).cloned().ok_or("condition ends where an identifier was expected")?;
        self.at += 1;
        match token {
            Token::Open => {
                self.enter()?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.tokens.get(self.at) {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err("missing \")\" in condition".into()),
                }
            }
            Token::Close => Err("unexpected \")\" in condition".into()),
            Token::Word(word) => {
                let quantifier = if word == "1" || is_keyword(&word, "any") {
                    Some(true)
                } else if is_keyword(&word, "all") {
                    Some(false)
                } else {
                    None
                };
                if let Some(one) = quantifier
                    && self.peek_word().is_some_and(|next| is_keyword(next, "of"))
                {
                    self.at += 1;
                    let pattern =
                        self.peek_word().ok_or("\"of\" must be followed by a pattern or \"them\"")?.to_owned();
                    self.at += 1;
                    return Ok(if one { Condition::OneOf(pattern) } else { Condition::AllOf(pattern) });
                }
                if ["and", "or", "not", "of"].iter().any(|keyword| is_keyword(&word, keyword)) {
                    return Err(format!("unexpected {word:?} where an identifier was expected"));
                }
                if word.contains('*') {
                    return Err(format!("{word:?}: wildcards are only allowed after \"1 of\" or \"all of\""));
                }
                Ok(Condition::Identifier(word))
            }
        }
    }
}

/// Whether a selector pattern selects `identifier`.
pub(crate) fn selects(pattern: &str, identifier: &str) -> bool {
    if identifier.starts_with('_') {
        return false;
    }
    if is_keyword(pattern, "them") {
        return true;
    }
    glob_match(pattern.as_bytes(), identifier.as_bytes())
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob_match(rest, &text[skip..])),
        Some((first, rest)) => text.first() == Some(first) && glob_match(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::Condition::*;
    use super::*;

    fn id(name: &str) -> Condition {
        Identifier(name.into())
    }

    #[test]
    fn precedence_and_grouping() {
        assert_eq!(Condition::parse("a or b and c").unwrap(), Or(vec![id("a"), And(vec![id("b"), id("c")])]));
        assert_eq!(Condition::parse("not a and b").unwrap(), And(vec![Not(Box::new(id("a"))), id("b")]));
        assert_eq!(Condition::parse("(a or b) and c").unwrap(), And(vec![Or(vec![id("a"), id("b")]), id("c")]));
        assert_eq!(Condition::parse("not not a").unwrap(), Not(Box::new(Not(Box::new(id("a"))))));
        assert_eq!(Condition::parse("a and(b)").unwrap(), And(vec![id("a"), id("b")]));
        assert_eq!(
            Condition::parse("1 of sel* and not 1 of filter*").unwrap(),
            And(vec![OneOf("sel*".into()), Not(Box::new(OneOf("filter*".into())))])
        );
        assert_eq!(Condition::parse("all of them").unwrap(), AllOf("them".into()));
        assert_eq!(Condition::parse("any of them").unwrap(), OneOf("them".into()));
        assert_eq!(
            Condition::parse("selection\n  and not\n  filter").unwrap(),
            And(vec![id("selection"), Not(Box::new(id("filter")))])
        );
    }

    #[test]
    fn identifiers_that_start_like_keywords() {
        assert_eq!(Condition::parse("notepad").unwrap(), id("notepad"));
        assert_eq!(Condition::parse("android or order").unwrap(), Or(vec![id("android"), id("order")]));
        assert_eq!(Condition::parse("sel-1 and sel.2").unwrap(), And(vec![id("sel-1"), id("sel.2")]));
    }

    #[test]
    fn errors_name_the_problem() {
        for (text, expected) in [
            ("", "empty"),
            ("a and", "ends"),
            ("(a or b", "missing"),
            ("a b", "unexpected \"b\""),
            ("a )", "unexpected \")\""),
            ("selection | count() > 5", "correlation"),
            ("sel*", "wildcards"),
            ("1 of", "pattern"),
            ("a and or b", "unexpected \"or\""),
        ] {
            let error = Condition::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(Condition::parse(&deep).unwrap_err().contains("nested"));
    }

    #[test]
    fn selectors() {
        assert!(selects("sel*", "selection"));
        assert!(selects("sel*", "sel"));
        assert!(!selects("sel*", "filter"));
        assert!(!selects("selection", "selection_2"), "patterns are anchored at both ends");
        assert!(selects("*_img", "sel_img"));
        assert!(selects("them", "anything"));
        assert!(!selects("them", "_hidden"));
        assert!(!selects("_*", "_hidden"), "underscore identifiers are never selected");
    }
}

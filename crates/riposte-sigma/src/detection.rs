//! A rule's `detection` section compiled into detection items and one
//! boolean expression over them.

use crate::condition::{Condition, selects};
use crate::matcher::merge_alternatives;
use crate::modifier::{Item, Placeholders, compile_item};
use crate::yaml::Yaml;

/// A boolean expression over detection items (indexes into `Detection::items`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Item(u32),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Const(bool),
}

#[derive(Clone, Debug)]
pub(crate) struct Detection {
    pub items: Vec<Item>,
    pub expr: Expr,
}

/// Why a detection does not compile, with text to find its line by.
#[derive(Debug)]
pub(crate) struct DetectionError {
    pub reason: String,
    /// A snippet of the rule text near the problem (a key), to report a line.
    pub near: Option<String>,
}

impl DetectionError {
    fn new(reason: impl Into<String>, near: Option<&str>) -> Self {
        DetectionError { reason: reason.into(), near: near.map(str::to_owned) }
    }
}

/// Compiles a `detection` (or a filter's `filter`) map. `reserved` keys are
/// not search identifiers.
pub(crate) fn compile(
    section: &Yaml,
    reserved: &[&str],
    placeholders: &Placeholders,
) -> Result<Detection, DetectionError> {
    let Yaml::Map(entries) = section else {
        return Err(DetectionError::new(format!("detection must be a map, found {}", section.kind()), None));
    };
    let mut items = Vec::new();
    let mut identifiers: Vec<(&str, Expr)> = Vec::new();
    let mut condition = None;
    for (key, value) in entries {
        match key.as_str() {
            "condition" => condition = Some(value),
            "timeframe" => {
                return Err(DetectionError::new(
                    "timeframe is Sigma 1 aggregation syntax: write a correlation rule",
                    Some("timeframe"),
                ));
            }
            reserved_key if reserved.contains(&reserved_key) => {}
            name => {
                let expr = search_identifier(value, &mut items, placeholders).map_err(|error| DetectionError {
                    near: error.near.or_else(|| Some(format!("{name}:"))),
                    ..error
                })?;
                identifiers.push((name, expr));
            }
        }
    }
    let condition = condition.ok_or_else(|| DetectionError::new("detection has no condition", None))?;
    let texts: Vec<String> = match condition {
        Yaml::String(text) => vec![text.clone()],
        // A list of conditions means any of them.
        Yaml::Seq(list) if !list.is_empty() => list
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| DetectionError::new("condition list must hold strings", Some("condition")))
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(DetectionError::new(
                format!("condition must be a string, found {}", other.kind()),
                Some("condition"),
            ));
        }
    };
    let mut alternatives = Vec::with_capacity(texts.len());
    for text in &texts {
        let parsed = Condition::parse(text).map_err(|reason| DetectionError::new(reason, Some("condition")))?;
        let expr = resolve(&parsed, &identifiers).map_err(|reason| DetectionError::new(reason, Some("condition")))?;
        alternatives.push(expr.unwrap_or(Expr::Const(false)));
    }
    let expr = if alternatives.len() == 1 { alternatives.remove(0) } else { Expr::Or(alternatives) };
    Ok(Detection { items, expr })
}

fn push_item(items: &mut Vec<Item>, mut item: Item) -> Expr {
    if !item.all {
        merge_alternatives(&mut item.matchers);
    }
    items.push(item);
    Expr::Item(u32::try_from(items.len() - 1).unwrap_or(u32::MAX))
}

/// A search identifier: a map (all of its items), a list of maps (any of
/// them), or a list of plain values (keywords, any of them).
fn search_identifier(value: &Yaml, items: &mut Vec<Item>, placeholders: &Placeholders) -> Result<Expr, DetectionError> {
    match value {
        Yaml::Map(entries) => {
            if entries.is_empty() {
                return Err(DetectionError::new("a search identifier is an empty map", None));
            }
            let mut all = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let item =
                    compile_item(key, value, placeholders).map_err(|reason| DetectionError::new(reason, Some(key)))?;
                all.push(push_item(items, item));
            }
            Ok(if all.len() == 1 { all.remove(0) } else { Expr::And(all) })
        }
        Yaml::Seq(elements) => {
            if elements.is_empty() {
                return Err(DetectionError::new("a search identifier is an empty list", None));
            }
            let (maps, scalars): (Vec<&Yaml>, Vec<&Yaml>) =
                elements.iter().partition(|element| matches!(element, Yaml::Map(_)));
            let mut any = Vec::new();
            if !scalars.is_empty() {
                let keywords = Yaml::Seq(scalars.into_iter().cloned().collect());
                let item =
                    compile_item("", &keywords, placeholders).map_err(|reason| DetectionError::new(reason, None))?;
                any.push(push_item(items, item));
            }
            for map in maps {
                any.push(search_identifier(map, items, placeholders)?);
            }
            Ok(if any.len() == 1 { any.remove(0) } else { Expr::Or(any) })
        }
        Yaml::Null => Err(DetectionError::new("a search identifier is empty", None)),
        scalar => {
            let item = compile_item("", scalar, placeholders).map_err(|reason| DetectionError::new(reason, None))?;
            Ok(push_item(items, item))
        }
    }
}

/// Resolves identifiers; `None` is a selector that selected nothing (dropped
/// from its parent).
fn resolve(condition: &Condition, identifiers: &[(&str, Expr)]) -> Result<Option<Expr>, String> {
    let list = |children: &[Condition]| -> Result<Vec<Expr>, String> {
        let mut out = Vec::with_capacity(children.len());
        for child in children {
            if let Some(expr) = resolve(child, identifiers)? {
                out.push(expr);
            }
        }
        Ok(out)
    };
    let group = |mut exprs: Vec<Expr>, and: bool| match exprs.len() {
        0 => None,
        1 => exprs.pop(),
        _ if and => Some(Expr::And(exprs)),
        _ => Some(Expr::Or(exprs)),
    };
    Ok(match condition {
        Condition::Identifier(name) => Some(
            identifiers
                .iter()
                .find(|(identifier, _)| identifier == name)
                .map(|(_, expr)| expr.clone())
                .ok_or_else(|| format!("condition names {name:?}, which is not a search identifier of this rule"))?,
        ),
        Condition::Not(inner) => resolve(inner, identifiers)?.map(|expr| Expr::Not(Box::new(expr))),
        Condition::And(children) => group(list(children)?, true),
        Condition::Or(children) => group(list(children)?, false),
        Condition::OneOf(pattern) | Condition::AllOf(pattern) => {
            let selected: Vec<Expr> = identifiers
                .iter()
                .filter(|(identifier, _)| selects(pattern, identifier))
                .map(|(_, expr)| expr.clone())
                .collect();
            group(selected, matches!(condition, Condition::AllOf(_)))
        }
    })
}

/// Moves `detection`'s item indexes past the first `offset` items.
pub(crate) fn shift(expr: &Expr, offset: u32) -> Expr {
    match expr {
        Expr::Item(index) => Expr::Item(index + offset),
        Expr::And(children) => Expr::And(children.iter().map(|child| shift(child, offset)).collect()),
        Expr::Or(children) => Expr::Or(children.iter().map(|child| shift(child, offset)).collect()),
        Expr::Not(inner) => Expr::Not(Box::new(shift(inner, offset))),
        Expr::Const(value) => Expr::Const(*value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Buffers;
    use riposte_event::Event;

    fn detection(yaml: &str) -> Result<Detection, DetectionError> {
        let section = crate::yaml::parse_documents(yaml).unwrap().remove(0);
        compile(&section, &[], &Placeholders::new())
    }

    /// Direct evaluation of an expression (the engine has its own, indexed).
    fn eval(detection: &Detection, event: &Event) -> bool {
        fn go(expr: &Expr, detection: &Detection, event: &Event) -> bool {
            match expr {
                Expr::Item(index) => {
                    let item = &detection.items[*index as usize];
                    let mut buffers = Buffers::for_event(event);
                    let mut results = item.matchers.iter().map(|m| m.eval(event, item.field, &mut buffers));
                    (if item.all { results.all(|r| r) } else { results.any(|r| r) }) != item.negate
                }
                Expr::And(children) => children.iter().all(|c| go(c, detection, event)),
                Expr::Or(children) => children.iter().any(|c| go(c, detection, event)),
                Expr::Not(inner) => !go(inner, detection, event),
                Expr::Const(value) => *value,
            }
        }
        go(&detection.expr, detection, event)
    }

    #[test]
    fn maps_lists_and_keywords() {
        let rule = detection(
            "sel_img:\n  - Image|endswith: '\\\\whoami.exe'\n  - OriginalFileName: whoami.exe\nsel_cli:\n  CommandLine|contains: '/all'\nkeywords:\n  - 'mimikatz'\n  - 'sekurlsa'\ncondition: all of sel_* or keywords\n",
        )
        .unwrap();
        assert!(eval(&rule, &Event::new().with("Image", "C:\\Windows\\whoami.exe").with("CommandLine", "whoami /all")));
        assert!(eval(&rule, &Event::new().with("OriginalFileName", "WHOAMI.EXE").with("CommandLine", "x /all")));
        assert!(!eval(&rule, &Event::new().with("Image", "C:\\Windows\\whoami.exe").with("CommandLine", "whoami")));
        assert!(eval(&rule, &Event::new().with("Whatever", "sekurlsa::logonpasswords")));
    }

    #[test]
    fn one_of_them_skips_underscores_and_empty_selectors_drop_out() {
        let rule = detection("a:\n  x: 1\n_b:\n  y: 2\ncondition: 1 of them\n").unwrap();
        assert!(eval(&rule, &Event::new().with("x", 1)));
        assert!(!eval(&rule, &Event::new().with("y", 2)));
        let rule = detection("sel:\n  x: 1\ncondition: sel and not 1 of filter*\n").unwrap();
        assert!(eval(&rule, &Event::new().with("x", 1)));
        let rule = detection("sel:\n  x: 1\ncondition: 1 of nothing*\n").unwrap();
        assert!(!eval(&rule, &Event::new().with("x", 1)));
    }

    #[test]
    fn keyword_all_form_and_condition_lists() {
        let rule = detection(
            "keywords:\n  '|all':\n    - 'Set-Mailbox'\n    - 'DeliverToMailboxAndForward'\ncondition: keywords\n",
        )
        .unwrap();
        assert!(eval(&rule, &Event::new().with("Data", "Set-Mailbox -DeliverToMailboxAndForward $true")));
        assert!(!eval(&rule, &Event::new().with("Data", "Set-Mailbox")));
        let rule = detection("a:\n  x: 1\nb:\n  y: 2\ncondition:\n  - a\n  - b\n").unwrap();
        assert!(eval(&rule, &Event::new().with("y", 2)));
    }

    #[test]
    fn errors() {
        for (yaml, expected) in [
            ("sel:\n  x: 1\n", "no condition"),
            ("sel:\n  x: 1\ncondition: other\n", "\"other\""),
            ("sel: {}\ncondition: sel\n", "empty map"),
            ("sel:\n  x|nope: 1\ncondition: sel\n", "unknown modifier"),
            ("sel:\n  x: 1\ntimeframe: 5m\ncondition: sel\n", "correlation"),
            ("sel:\n  x: 1\ncondition: 5\n", "must be a string"),
        ] {
            let error = detection(yaml).unwrap_err();
            assert!(error.reason.contains(expected), "{yaml:?}: {}", error.reason);
        }
        assert_eq!(detection("sel:\n  x|nope: 1\ncondition: sel\n").unwrap_err().near.as_deref(), Some("x|nope"));
    }
}

//! Sigma regexes read the way PCRE reads them.
//!
//! The Sigma specification names PCRE as the regex dialect, and in PCRE
//! `\w`, `\d` and `\s` are ASCII classes. The `regex` crate makes them
//! Unicode classes, which is both a different meaning and a costly one: the
//! SigmaHQ rule `-k\s\w{1,64}...` compiles to 64 copies of a UTF-8 automaton
//! for every word character of Unicode (105 ms, two thirds of loading all
//! 3,141 rules). `.` and `i` stay Unicode-aware, as in PCRE's UTF mode.

use regex_syntax::ast::{
    self, Ast, ClassAscii, ClassAsciiKind, ClassBracketed, ClassPerl, ClassPerlKind, ClassSet, ClassSetItem,
};

/// `pattern` with its Perl classes made ASCII, or `None` when it does not
/// parse (the regex compiler then reports the error on the original).
pub(crate) fn ascii_perl_classes(pattern: &str) -> Option<String> {
    let mut tree = ast::parse::Parser::new().parse(pattern).ok()?;
    rewrite(&mut tree);
    let mut out = String::with_capacity(pattern.len() + 16);
    ast::print::Printer::new().print(&tree, &mut out).ok()?;
    Some(out)
}

fn ascii(perl: &ClassPerl) -> ClassAscii {
    let kind = match perl.kind {
        ClassPerlKind::Digit => ClassAsciiKind::Digit,
        ClassPerlKind::Space => ClassAsciiKind::Space,
        ClassPerlKind::Word => ClassAsciiKind::Word,
    };
    ClassAscii { span: perl.span, kind, negated: perl.negated }
}

fn rewrite(tree: &mut Ast) {
    match tree {
        Ast::ClassPerl(perl) => {
            let class = ClassSetItem::Ascii(ascii(perl));
            *tree =
                Ast::class_bracketed(ClassBracketed { span: perl.span, negated: false, kind: ClassSet::Item(class) });
        }
        Ast::ClassBracketed(class) => rewrite_set(&mut class.kind),
        Ast::Repetition(repetition) => rewrite(&mut repetition.ast),
        Ast::Group(group) => rewrite(&mut group.ast),
        Ast::Alternation(alternation) => alternation.asts.iter_mut().for_each(rewrite),
        Ast::Concat(concat) => concat.asts.iter_mut().for_each(rewrite),
        Ast::Empty(_) | Ast::Flags(_) | Ast::Literal(_) | Ast::Dot(_) | Ast::Assertion(_) | Ast::ClassUnicode(_) => {}
    }
}

fn rewrite_set(set: &mut ClassSet) {
    match set {
        ClassSet::Item(item) => rewrite_item(item),
        ClassSet::BinaryOp(operation) => {
            rewrite_set(&mut operation.lhs);
            rewrite_set(&mut operation.rhs);
        }
    }
}

fn rewrite_item(item: &mut ClassSetItem) {
    match item {
        ClassSetItem::Perl(perl) => *item = ClassSetItem::Ascii(ascii(perl)),
        ClassSetItem::Bracketed(class) => rewrite_set(&mut class.kind),
        ClassSetItem::Union(union) => union.items.iter_mut().for_each(rewrite_item),
        ClassSetItem::Empty(_)
        | ClassSetItem::Literal(_)
        | ClassSetItem::Range(_)
        | ClassSetItem::Ascii(_)
        | ClassSetItem::Unicode(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_become_ascii_everywhere() {
        assert_eq!(ascii_perl_classes(r"-k\s\w{1,64}").unwrap(), r"-k[[:space:]][[:word:]]{1,64}");
        assert_eq!(ascii_perl_classes(r"[\w.-]+\D").unwrap(), r"[[:word:].-]+[[:^digit:]]");
        assert_eq!(ascii_perl_classes(r"\\w(?i:a)").unwrap(), r"\\w(?i:a)", "an escaped backslash stays");
        assert!(ascii_perl_classes(r"(unclosed").is_none());
        let ascii_word = regex::Regex::new(&ascii_perl_classes(r"^\w+$").unwrap()).unwrap();
        assert!(ascii_word.is_match("Abc_09"));
        assert!(!ascii_word.is_match("café"), "PCRE's \\w is ASCII");
    }
}

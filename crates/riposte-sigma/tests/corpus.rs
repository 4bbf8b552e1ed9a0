//! The SigmaHQ rule set in `../shared/corpus/sigma` loads.

mod common;

#[test]
fn sigmahq_rules_load() {
    let Some(rules) = common::corpus_or_skip("sigma/rules", "sigmahq_rules_load") else { return };
    let files = common::rule_files(&rules);
    let (engine, report) = common::load(&[rules]);
    let total = files.len();
    let failed = report.errors.len();
    for error in &report.errors {
        eprintln!("not loaded: {error}");
    }
    eprintln!(
        "{total} rules, {} loaded, {failed} failed, {} with log sources the mapping does not know",
        engine.rules().len(),
        report.unmapped
    );
    assert!(engine.rules().len() * 1000 >= total * 995, "fewer than 99.5% of {total} rules loaded");
    for error in &report.errors {
        assert!(!error.reason.contains("unknown modifier"), "{error}");
    }
}

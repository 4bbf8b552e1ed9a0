//! Templates and expressions (`minijinja`): compiled when the playbook is
//! loaded, strict about undefined variables, and limited in how much work
//! one evaluation may do (fuel), so a playbook cannot loop for ever.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior, Value};

/// Instructions one render or evaluation may spend.
pub const FUEL: u64 = 200_000;

/// A playbook's compiled templates.
pub struct Templates {
    env: Environment<'static>,
    count: usize,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("count", &self.count).finish()
    }
}

/// An expression, checked at load (`alert.level == "high"`).
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub source: String,
}

/// A value whose strings may be templates. A string that is one `{{ ... }}`
/// and nothing else is an expression, so it keeps its type (a list stays a
/// list); any other string with `{{` or `{%` renders to text.
#[derive(Clone, Debug, PartialEq)]
pub enum Tmpl {
    Literal(serde_json::Value),
    Text(String),
    Expr(Expr),
    List(Vec<Tmpl>),
    Map(Vec<(String, Tmpl)>),
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        // Text goes to connectors, not to a browser: no HTML escaping.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Templates { env, count: 0 }
    }
}

impl Templates {
    /// Whether `name` is one of the template language's own functions (`range`, `dict`, ...).
    pub fn is_global(&self, name: &str) -> bool {
        self.env.globals().any(|(global, _)| global == name)
    }

    /// Compiles an expression and returns it with the variables it reads
    /// (dotted, e.g. `steps.lookup.output`).
    pub fn expression(&self, source: &str) -> Result<(Expr, BTreeSet<String>), String> {
        let compiled = self.env.compile_expression_owned(source.to_owned()).map_err(|error| describe(&error))?;
        let names = compiled.undeclared_variables(true).into_iter().collect();
        Ok((Expr { source: source.to_owned() }, names))
    }

    /// Compiles every template in `value`; adds the variables they read to `names`.
    pub fn compile(&mut self, value: &serde_json::Value, names: &mut BTreeSet<String>) -> Result<Tmpl, String> {
        Ok(match value {
            serde_json::Value::String(text) if text.contains("{{") || text.contains("{%") => {
                if let Some(inner) = whole_expression(text) {
                    let (expr, read) = self.expression(inner)?;
                    names.extend(read);
                    Tmpl::Expr(expr)
                } else {
                    self.count += 1;
                    let name = format!("t{}", self.count);
                    self.env.add_template_owned(name.clone(), text.clone()).map_err(|error| describe(&error))?;
                    let template = self.env.get_template(&name).map_err(|error| describe(&error))?;
                    names.extend(template.undeclared_variables(true));
                    Tmpl::Text(name)
                }
            }
            serde_json::Value::Array(items) => {
                Tmpl::List(items.iter().map(|item| self.compile(item, names)).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(map) => Tmpl::Map(
                map.iter()
                    .map(|(key, item)| Ok((key.clone(), self.compile(item, names)?)))
                    .collect::<Result<_, String>>()?,
            ),
            literal => Tmpl::Literal(literal.clone()),
        })
    }

    /// The value of `expr` in `context`.
    pub fn eval(&self, expr: &Expr, context: &Value) -> Result<serde_json::Value, String> {
        let compiled = self.env.compile_expression_owned(expr.source.clone()).map_err(|error| describe(&error))?;
        let value = compiled.eval(context.clone()).map_err(|error| describe(&error))?;
        to_json(&value)
    }

    /// Whether `expr` is true in `context` (Jinja's truthiness).
    pub fn test(&self, expr: &Expr, context: &Value) -> Result<bool, String> {
        let compiled = self.env.compile_expression_owned(expr.source.clone()).map_err(|error| describe(&error))?;
        Ok(compiled.eval(context.clone()).map_err(|error| describe(&error))?.is_true())
    }

    /// `template` with every template in it rendered in `context`.
    pub fn render(&self, template: &Tmpl, context: &Value) -> Result<serde_json::Value, String> {
        Ok(match template {
            Tmpl::Literal(value) => value.clone(),
            Tmpl::Text(name) => {
                let compiled = self.env.get_template(name).map_err(|error| describe(&error))?;
                serde_json::Value::String(compiled.render(context.clone()).map_err(|error| describe(&error))?)
            }
            Tmpl::Expr(expr) => self.eval(expr, context)?,
            Tmpl::List(items) => {
                serde_json::Value::Array(items.iter().map(|item| self.render(item, context)).collect::<Result<_, _>>()?)
            }
            Tmpl::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(key, item)| Ok((key.clone(), self.render(item, context)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

/// The expression inside `{{ ... }}` when that is the whole string.
fn whole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then(|| inner.trim())
}

/// A template context from any serializable value.
pub fn context(value: impl serde::Serialize) -> Value {
    Value::from(minijinja::value::Serde(value))
}

fn to_json(value: &Value) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|error| error.to_string())
}

/// minijinja's message, without its template name (ours are internal).
fn describe(error: &minijinja::Error) -> String {
    let mut text =
        error.detail().map_or_else(|| error.kind().to_string(), |detail| format!("{}: {detail}", error.kind()));
    if let Some(source) = std::error::Error::source(error) {
        text.push_str(&format!(" ({source})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Value {
        super::context(serde_json::json!({"alert": {"level": "high", "ips": ["1.2.3.4", "5.6.7.8"]}}))
    }

    #[test]
    fn a_whole_expression_keeps_its_type() {
        let mut templates = Templates::default();
        let mut names = BTreeSet::new();
        let value = serde_json::json!({"ips": "{{ alert.ips }}", "text": "level {{ alert.level }}", "n": 3});
        let compiled = templates.compile(&value, &mut names).unwrap();
        assert_eq!(names, BTreeSet::from(["alert.ips".to_owned(), "alert.level".to_owned()]));
        let rendered = templates.render(&compiled, &context()).unwrap();
        assert_eq!(rendered, serde_json::json!({"ips": ["1.2.3.4", "5.6.7.8"], "text": "level high", "n": 3}));
    }

    #[test]
    fn undefined_variables_are_errors_not_empty_text() {
        let mut templates = Templates::default();
        let compiled = templates.compile(&serde_json::json!("host {{ alert.host }}"), &mut BTreeSet::new()).unwrap();
        let error = templates.render(&compiled, &context()).unwrap_err();
        assert!(error.contains("undefined"), "{error}");
    }

    #[test]
    fn a_template_that_never_ends_runs_out_of_fuel() {
        let mut templates = Templates::default();
        let endless = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        let compiled = templates.compile(&serde_json::json!(endless), &mut BTreeSet::new()).unwrap();
        let error = templates.render(&compiled, &context()).unwrap_err();
        assert!(error.contains("fuel"), "{error}");
    }

    #[test]
    fn syntax_errors_are_found_at_compile_time() {
        let mut templates = Templates::default();
        assert!(templates.compile(&serde_json::json!("{{ alert. }}"), &mut BTreeSet::new()).is_err());
        assert!(templates.compile(&serde_json::json!("{% if x %}no end"), &mut BTreeSet::new()).is_err());
        assert!(templates.expression("alert.level ==").is_err());
    }
}

//! Log-source and field mappings, as data (`data/logsources.yml`).
//!
//! A mapping says which Sigma log sources (product, service, category) an
//! event belongs to, from the fields that identify its origin (for Windows:
//! channel, provider and event id), and which of its fields Sigma knows by
//! another name (Security 4688's `NewProcessName` is Sysmon's `Image`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use riposte_event::{Event, LogSource, Symbol, Value};

use crate::error::MappingError;
use crate::yaml::{self, Yaml};

/// The mapping built into Riposte.
pub const BUILTIN: &str = include_str!("../data/logsources.yml");

/// A field an event's origin is read from: the first present field wins.
#[derive(Clone, Debug)]
struct Key {
    name: String,
    fields: Vec<Symbol>,
}

/// What one test of a condition reads.
#[derive(Clone, Debug)]
enum Subject {
    Key(usize),
    Field(Symbol),
    Service,
}

#[derive(Clone, Debug)]
struct Test {
    subject: Subject,
    /// Lower-cased; any of them.
    values: Vec<String>,
}

/// Any of the clauses; a clause holds when all its tests do.
#[derive(Clone, Debug, Default)]
struct Condition {
    clauses: Vec<Vec<Test>>,
}

/// How a Sigma field is read from an event of a log source.
#[derive(Clone, Debug)]
pub(crate) enum Alias {
    /// The Sigma field is another event field.
    Rename { sigma: Symbol, field: Symbol },
    /// The Sigma field is an event field's value translated (unknown values
    /// are kept as they are).
    Translate { sigma: Symbol, field: Symbol, map: Arc<HashMap<String, String>> },
}

#[derive(Clone, Debug)]
struct CategoryRule {
    category: String,
    condition: Condition,
    aliases: Vec<Alias>,
}

#[derive(Clone, Debug)]
struct Product {
    name: String,
    keys: Vec<Key>,
    detect: Vec<usize>,
    services: Vec<(String, Condition)>,
    categories: Vec<CategoryRule>,
}

/// Log-source and field mappings for every product Riposte recognises.
#[derive(Clone, Debug)]
pub struct Mapping {
    products: Vec<Product>,
    /// Every field a condition reads: the class of an event is a function of
    /// these (and of its decoder's log source).
    discriminators: Vec<Symbol>,
}

/// The log sources of a class of events, and how its fields are aliased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Classification {
    pub product: Option<String>,
    pub services: Vec<String>,
    pub categories: Vec<String>,
    /// Indexes of the category rules that matched (they fix the aliases).
    pub matched: Vec<(usize, usize)>,
}

impl Classification {
    /// A stable text naming this class, for sharing compiled state.
    pub(crate) fn signature(&self) -> String {
        format!("{:?}|{:?}|{:?}|{:?}", self.product, self.services, self.categories, self.matched)
    }

    /// Whether a rule written for `logsource` applies to events of this class.
    pub(crate) fn covers(&self, logsource: &LogSource) -> bool {
        let product = logsource.product.as_ref().is_none_or(|product| self.product.as_ref() == Some(product));
        let service = logsource.service.as_ref().is_none_or(|service| self.services.contains(service));
        let category = logsource.category.as_ref().is_none_or(|category| self.categories.contains(category));
        product && service && category
    }
}

fn lower_list(value: &Yaml, what: &str) -> Result<Vec<String>, MappingError> {
    let one = |value: &Yaml| {
        value
            .scalar_text()
            .map(|text| text.to_ascii_lowercase())
            .ok_or_else(|| MappingError::Invalid(format!("{what}: expected a value or a list of values")))
    };
    match value {
        Yaml::Seq(items) => items.iter().map(one).collect(),
        scalar => Ok(vec![one(scalar)?]),
    }
}

fn entries<'a>(value: &'a Yaml, what: &str) -> Result<&'a [(String, Yaml)], MappingError> {
    match value {
        Yaml::Map(entries) => Ok(entries),
        other => Err(MappingError::Invalid(format!("{what} must be a map, found {}", other.kind()))),
    }
}

impl Mapping {
    /// The mapping built into Riposte.
    pub fn builtin() -> Mapping {
        // The built-in file is checked by a test; failing here is a build defect.
        Mapping::from_yaml(BUILTIN).unwrap_or_else(|error| panic!("built-in log-source mapping: {error}"))
    }

    /// Reads a mapping file (the format of `data/logsources.yml`).
    pub fn from_yaml(text: &str) -> Result<Mapping, MappingError> {
        let document =
            yaml::parse_documents(text).map_err(MappingError::Yaml)?.into_iter().next().unwrap_or(Yaml::Null);
        let products = document.get("products").ok_or_else(|| MappingError::Invalid("no products section".into()))?;
        let mut mapping = Mapping { products: Vec::new(), discriminators: Vec::new() };
        for (name, section) in entries(products, "products")? {
            let product = mapping.read_product(name, section)?;
            mapping.products.push(product);
        }
        let mut seen = Vec::new();
        mapping.discriminators.retain(|field| {
            let fresh = !seen.contains(field);
            seen.push(*field);
            fresh
        });
        Ok(mapping)
    }

    fn read_product(&mut self, name: &str, section: &Yaml) -> Result<Product, MappingError> {
        let mut product = Product {
            name: name.to_ascii_lowercase(),
            keys: Vec::new(),
            detect: Vec::new(),
            services: Vec::new(),
            categories: Vec::new(),
        };
        if let Some(keys) = section.get("keys") {
            for (key, fields) in entries(keys, "keys")? {
                let fields: Vec<Symbol> = match fields {
                    Yaml::Seq(items) => {
                        items.iter().filter_map(Yaml::scalar_text).map(|field| Symbol::intern(&field)).collect()
                    }
                    scalar => scalar.scalar_text().map(|field| vec![Symbol::intern(&field)]).unwrap_or_default(),
                };
                if fields.is_empty() {
                    return Err(MappingError::Invalid(format!("{name}: key {key} names no field")));
                }
                self.discriminators.extend(fields.iter().copied());
                product.keys.push(Key { name: key.clone(), fields });
            }
        }
        if let Some(detect) = section.get("detect") {
            for key in lower_list(detect, "detect")? {
                let index = product
                    .keys
                    .iter()
                    .position(|known| known.name.eq_ignore_ascii_case(&key))
                    .ok_or_else(|| MappingError::Invalid(format!("{name}: detect names unknown key {key}")))?;
                product.detect.push(index);
            }
        }
        if let Some(services) = section.get("services") {
            for (service, condition) in entries(services, "services")? {
                let condition = self.read_condition(&product, condition, false, &format!("service {service}"))?;
                product.services.push((service.to_ascii_lowercase(), condition));
            }
        }
        if let Some(categories) = section.get("categories") {
            for (category, rules) in entries(categories, "categories")? {
                let rules: Vec<&Yaml> = match rules {
                    Yaml::Seq(items) => items.iter().collect(),
                    single => vec![single],
                };
                for rule in rules {
                    let what = format!("category {category}");
                    let condition =
                        self.read_condition(&product, &without(rule, &["fields", "values"]), true, &what)?;
                    let aliases = read_aliases(rule, &what)?;
                    product.categories.push(CategoryRule {
                        category: category.to_ascii_lowercase(),
                        condition,
                        aliases,
                    });
                }
            }
        }
        Ok(product)
    }

    fn read_condition(
        &mut self,
        product: &Product,
        value: &Yaml,
        services_allowed: bool,
        what: &str,
    ) -> Result<Condition, MappingError> {
        let clauses: Vec<&Yaml> = match value {
            Yaml::Seq(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut condition = Condition::default();
        for clause in clauses {
            let mut tests = Vec::new();
            for (name, values) in entries(clause, what)? {
                let subject = if name == "service" && services_allowed {
                    Subject::Service
                } else if let Some(index) = product.keys.iter().position(|key| key.name == *name) {
                    Subject::Key(index)
                } else {
                    let field = Symbol::intern(name);
                    self.discriminators.push(field);
                    Subject::Field(field)
                };
                tests.push(Test { subject, values: lower_list(values, what)? });
            }
            condition.clauses.push(tests);
        }
        Ok(condition)
    }

    /// Writes the text that decides an event's class into `out`: its
    /// decoder's log source and the values of every discriminating field,
    /// each read with `first_value` (the field's first value in the event).
    pub(crate) fn class_key<'e>(
        &self,
        event: &Event,
        first_value: impl Fn(Symbol) -> Option<Value<'e>>,
        out: &mut String,
    ) {
        out.clear();
        if let Some(source) = &event.logsource {
            for part in [&source.product, &source.service, &source.category] {
                out.push_str(part.as_deref().unwrap_or(""));
                out.push('\u{1f}');
            }
        }
        out.push('\u{1e}');
        for &field in &self.discriminators {
            out.push_str(first_value(field).and_then(|value| value.as_text()).unwrap_or(""));
            out.push('\u{1f}');
        }
    }

    /// The log sources of `event`.
    pub(crate) fn classify(&self, event: &Event) -> Classification {
        let hint = event.logsource.as_deref();
        let hinted_product = hint.and_then(|source| source.product.clone());
        let product_index = match &hinted_product {
            Some(name) => self.products.iter().position(|product| product.name == *name),
            None => self
                .products
                .iter()
                .position(|product| product.detect.iter().any(|&key| key_text(&product.keys[key], event).is_some())),
        };
        let mut classification = Classification {
            product: hinted_product.or_else(|| product_index.map(|index| self.products[index].name.clone())),
            ..Classification::default()
        };
        // The decoder's service counts for the categories below.
        if let Some(service) = hint.and_then(|source| source.service.as_ref()) {
            classification.services.push(service.clone());
        }
        if let Some(index) = product_index {
            let product = &self.products[index];
            for (service, condition) in &product.services {
                if holds(condition, product, event, &[]) && !classification.services.contains(service) {
                    classification.services.push(service.clone());
                }
            }
            for (rule_index, rule) in product.categories.iter().enumerate() {
                if holds(&rule.condition, product, event, &classification.services) {
                    classification.matched.push((index, rule_index));
                    if !classification.categories.contains(&rule.category) {
                        classification.categories.push(rule.category.clone());
                    }
                }
            }
        }
        if let Some(category) = hint.and_then(|source| source.category.as_ref())
            && !classification.categories.contains(category)
        {
            classification.categories.push(category.clone());
        }
        classification.services.sort();
        classification.categories.sort();
        classification
    }

    /// The field aliases of a class, in mapping order.
    pub(crate) fn aliases(&self, classification: &Classification) -> Vec<Alias> {
        classification
            .matched
            .iter()
            .flat_map(|&(product, rule)| self.products[product].categories[rule].aliases.iter().cloned())
            .collect()
    }

    /// Whether some event could ever be classified under `logsource` by this
    /// mapping (sources it does not know need their decoder to name them).
    pub fn knows(&self, logsource: &LogSource) -> bool {
        let Some(product) =
            self.products.iter().find(|product| logsource.product.as_ref().is_none_or(|name| product.name == *name))
        else {
            return false;
        };
        let service =
            logsource.service.as_ref().is_none_or(|service| product.services.iter().any(|(name, _)| name == service));
        let category = logsource
            .category
            .as_ref()
            .is_none_or(|category| product.categories.iter().any(|rule| rule.category == *category));
        service && category
    }

    /// The categories and services defined for each product, for documentation.
    pub fn summary(&self) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
        self.products
            .iter()
            .map(|product| {
                let services = product.services.iter().map(|(name, _)| name.clone()).collect();
                let mut categories: Vec<String> = product.categories.iter().map(|rule| rule.category.clone()).collect();
                categories.dedup();
                (product.name.clone(), (services, categories))
            })
            .collect()
    }
}

fn without(value: &Yaml, keys: &[&str]) -> Yaml {
    match value {
        Yaml::Map(entries) => {
            Yaml::Map(entries.iter().filter(|(name, _)| !keys.contains(&name.as_str())).cloned().collect())
        }
        other => other.clone(),
    }
}

fn read_aliases(rule: &Yaml, what: &str) -> Result<Vec<Alias>, MappingError> {
    let mut aliases = Vec::new();
    if let Some(fields) = rule.get("fields") {
        for (sigma, field) in entries(fields, what)? {
            let field = field
                .scalar_text()
                .ok_or_else(|| MappingError::Invalid(format!("{what}: field {sigma} must name an event field")))?;
            aliases.push(Alias::Rename { sigma: Symbol::intern(sigma), field: Symbol::intern(&field) });
        }
    }
    if let Some(values) = rule.get("values") {
        for (sigma, spec) in entries(values, what)? {
            let field = spec
                .get("from")
                .and_then(Yaml::scalar_text)
                .ok_or_else(|| MappingError::Invalid(format!("{what}: values of {sigma} need `from`")))?;
            let mut map = HashMap::new();
            for (raw, translated) in entries(spec.get("map").unwrap_or(&Yaml::Null), what)? {
                let translated = translated
                    .scalar_text()
                    .ok_or_else(|| MappingError::Invalid(format!("{what}: values of {sigma} must be text")))?;
                map.insert(raw.to_ascii_lowercase(), translated);
            }
            aliases.push(Alias::Translate {
                sigma: Symbol::intern(sigma),
                field: Symbol::intern(&field),
                map: Arc::new(map),
            });
        }
    }
    Ok(aliases)
}

fn key_text<'e>(key: &Key, event: &'e Event) -> Option<&'e str> {
    key.fields.iter().find_map(|&field| event.text(field))
}

fn holds(condition: &Condition, product: &Product, event: &Event, services: &[String]) -> bool {
    condition.clauses.iter().any(|clause| {
        clause.iter().all(|test| match test.subject {
            Subject::Service => test.values.iter().any(|value| services.contains(value)),
            Subject::Key(index) => key_text(&product.keys[index], event)
                .is_some_and(|text| test.values.iter().any(|value| value.eq_ignore_ascii_case(text))),
            Subject::Field(field) => {
                event.text(field).is_some_and(|text| test.values.iter().any(|value| value.eq_ignore_ascii_case(text)))
            }
        })
    })
}

/// Applies a class's aliases to an event.
pub(crate) fn apply_aliases(aliases: &[Alias], event: &mut Event) {
    for alias in aliases {
        match alias {
            Alias::Rename { sigma, field } => event.add_alias(*field, *sigma),
            Alias::Translate { sigma, field, map } => {
                if event.contains(*sigma) {
                    continue;
                }
                let translated: Option<String> = event
                    .text(*field)
                    .map(|raw| map.get(&raw.to_ascii_lowercase()).cloned().unwrap_or_else(|| raw.to_owned()));
                if let Some(text) = translated {
                    event.push_hidden_str(*sigma, &text);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(channel: &str, event_id: u32) -> Event {
        let mut event = Event::new().with("Channel", channel).with("EventID", event_id);
        event.logsource = Some(Arc::new(LogSource::product("windows")));
        event
    }

    #[test]
    fn builtin_mapping_loads() {
        let mapping = Mapping::builtin();
        let summary = mapping.summary();
        let (services, categories) = &summary["windows"];
        assert!(services.len() > 40, "{services:?}");
        assert!(categories.contains(&"process_creation".to_owned()));
    }

    #[test]
    fn sysmon_and_security_events_are_classified() {
        let mapping = Mapping::builtin();
        let sysmon = mapping.classify(&windows("Microsoft-Windows-Sysmon/Operational", 1));
        assert_eq!(sysmon.product.as_deref(), Some("windows"));
        assert_eq!(sysmon.services, ["sysmon"]);
        assert_eq!(sysmon.categories, ["process_creation"]);
        let security = mapping.classify(&windows("Security", 4688));
        assert_eq!(security.services, ["security"]);
        assert_eq!(security.categories, ["process_creation"]);
        assert!(security.covers(&LogSource {
            product: Some("windows".into()),
            category: Some("process_creation".into()),
            service: None
        }));
        assert!(security.covers(&LogSource {
            product: Some("windows".into()),
            service: Some("security".into()),
            category: None
        }));
        assert!(!security.covers(&LogSource {
            product: Some("windows".into()),
            service: Some("sysmon".into()),
            category: None
        }));
        assert!(!security.covers(&LogSource {
            product: Some("linux".into()),
            category: Some("process_creation".into()),
            service: None
        }));
        let registry = mapping.classify(&windows("Microsoft-Windows-Sysmon/Operational", 13));
        assert_eq!(registry.categories, ["registry_event", "registry_set"]);
        // Sysmon events without a channel are known by their provider.
        let mut no_channel = Event::new().with("Provider_Name", "Microsoft-Windows-Sysmon").with("EventID", 6);
        no_channel.logsource = Some(Arc::new(LogSource::product("windows")));
        assert_eq!(mapping.classify(&no_channel).categories, ["driver_load"]);
        // Without a hint, a Channel makes an event a Windows event.
        let unhinted = Event::new().with("Channel", "security").with("EventID", "4624");
        assert_eq!(mapping.classify(&unhinted).services, ["security"]);
        assert_eq!(mapping.classify(&Event::new().with("foo", 1)), Classification::default());
    }

    #[test]
    fn aliases_rename_and_translate() {
        let mapping = Mapping::builtin();
        let mut event =
            windows("Security", 4688).with("NewProcessName", "C:\\x.exe").with("MandatoryLabel", "S-1-16-12288");
        let classification = mapping.classify(&event);
        apply_aliases(&mapping.aliases(&classification), &mut event);
        assert_eq!(event.text(Symbol::intern("Image")), Some("C:\\x.exe"));
        assert_eq!(event.text(Symbol::intern("IntegrityLevel")), Some("High"));
        assert_eq!(event.to_json().get("Image"), None, "aliases stay out of the shown event");
    }

    #[test]
    fn decoder_hints_and_unknown_sources() {
        let mapping = Mapping::builtin();
        let mut event = Event::new().with("type", "EXECVE");
        event.logsource = Some(Arc::new(LogSource::parse("product=linux,service=auditd").unwrap()));
        let classification = mapping.classify(&event);
        assert_eq!(classification.product.as_deref(), Some("linux"));
        assert_eq!(classification.services, ["auditd"]);
        assert!(mapping.knows(&LogSource {
            product: Some("windows".into()),
            category: Some("image_load".into()),
            service: None
        }));
        assert!(!mapping.knows(&LogSource {
            product: Some("windows".into()),
            category: Some("file_access".into()),
            service: None
        }));
        assert!(!mapping.knows(&LogSource { product: Some("linux".into()), category: None, service: None }));
    }

    #[test]
    fn bad_mappings_are_explained() {
        assert!(matches!(Mapping::from_yaml("nothing: here"), Err(MappingError::Invalid(_))));
        assert!(
            Mapping::from_yaml("products:\n  x:\n    keys: {a: [f]}\n    detect: [b]\n")
                .unwrap_err()
                .to_string()
                .contains("unknown key b")
        );
        assert!(matches!(Mapping::from_yaml("products: [\n"), Err(MappingError::Yaml(_))));
    }
}

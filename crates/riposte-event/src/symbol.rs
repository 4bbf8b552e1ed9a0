//! Interned field names.
//!
//! Matching compares field names millions of times a second, so every name is
//! interned once into a process-wide table and compared as a `u32` afterwards.
//! Rule compilers intern the names they reference with [`Symbol::intern`];
//! decoders go through a [`SymbolCache`] (one per worker, no lock on a hit) which
//! stops adding names from data past [`DATA_NAME_LIMIT`], so that a stream of
//! events with random keys cannot grow the table without bound. A field whose
//! name was not interned keeps its text and can never be named by a rule,
//! because every name a rule uses is interned.

use std::fmt;
use std::sync::{OnceLock, RwLock};

use rustc_hash::FxHashMap;

/// Most names that data alone may add to the table; names used by rules and
/// configuration are always added.
pub const DATA_NAME_LIMIT: usize = 100_000;

/// An interned field name.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(u32);

#[derive(Default)]
struct Table {
    ids: FxHashMap<&'static str, Symbol>,
    names: Vec<&'static str>,
}

fn table() -> &'static RwLock<Table> {
    static TABLE: OnceLock<RwLock<Table>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Table::default();
        // Index 0 is reserved for names that were not interned.
        table.names.push("");
        RwLock::new(table)
    })
}

impl Symbol {
    /// The symbol of a field whose name is not in the table.
    pub const UNINTERNED: Symbol = Symbol(0);

    /// Interns `name`, adding it if needed. For names from rules and configuration.
    pub fn intern(name: &str) -> Symbol {
        Self::intern_bounded(name, usize::MAX).unwrap_or(Symbol::UNINTERNED)
    }

    /// The symbol of `name` if it was interned.
    pub fn lookup(name: &str) -> Option<Symbol> {
        let table = table().read().unwrap_or_else(|poison| poison.into_inner());
        table.ids.get(name).copied()
    }

    fn intern_bounded(name: &str, limit: usize) -> Option<Symbol> {
        if let Some(symbol) = Self::lookup(name) {
            return Some(symbol);
        }
        let mut table = table().write().unwrap_or_else(|poison| poison.into_inner());
        if let Some(symbol) = table.ids.get(name) {
            return Some(*symbol);
        }
        if table.names.len() > limit {
            return None;
        }
        let id = u32::try_from(table.names.len()).ok()?;
        // Names live for the whole process: the table only grows, and is bounded
        // for data by DATA_NAME_LIMIT.
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        table.names.push(name);
        table.ids.insert(name, Symbol(id));
        Some(Symbol(id))
    }

    /// The name, or `""` for [`Symbol::UNINTERNED`].
    pub fn as_str(self) -> &'static str {
        let table = table().read().unwrap_or_else(|poison| poison.into_inner());
        table.names.get(self.0 as usize).copied().unwrap_or("")
    }

    /// A dense index, for tables indexed by symbol.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn is_interned(self) -> bool {
        self != Symbol::UNINTERNED
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({}, {:?})", self.0, self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A per-worker cache in front of the global table, for decoders.
#[derive(Default)]
pub struct SymbolCache {
    known: FxHashMap<Box<str>, Symbol>,
}

impl SymbolCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The symbol for a field name met in data; [`Symbol::UNINTERNED`] once the
    /// table holds [`DATA_NAME_LIMIT`] names and this one is not among them.
    pub fn get(&mut self, name: &str) -> Symbol {
        if let Some(symbol) = self.known.get(name) {
            return *symbol;
        }
        match Symbol::intern_bounded(name, DATA_NAME_LIMIT) {
            Some(symbol) => {
                // The cache is bounded like the table it fronts.
                if self.known.len() < DATA_NAME_LIMIT {
                    self.known.insert(name.into(), symbol);
                }
                symbol
            }
            None => Symbol::UNINTERNED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_reversible() {
        let a = Symbol::intern("CommandLine");
        let b = Symbol::intern("CommandLine");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "CommandLine");
        assert_ne!(a, Symbol::intern("commandline"), "names are case-sensitive");
        assert!(a.is_interned());
        assert_eq!(Symbol::lookup("CommandLine"), Some(a));
    }

    #[test]
    fn cache_agrees_with_table() {
        let mut cache = SymbolCache::new();
        let direct = Symbol::intern("ParentImage");
        assert_eq!(cache.get("ParentImage"), direct);
        assert_eq!(cache.get("ParentImage"), direct);
        let fresh = cache.get("a.name.only.seen.in.data");
        assert_eq!(Symbol::lookup("a.name.only.seen.in.data"), Some(fresh));
    }
}

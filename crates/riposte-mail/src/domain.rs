//! Domains as phishing uses them: the registered part of a name, free
//! mailbox providers, URL shorteners, and names made to look like a brand's
//! (a small edit away, or the same once look-alike characters are folded).

use std::sync::OnceLock;

/// Second-level labels under which names are registered one level deeper
/// (`example.co.uk`).
const SECOND_LEVELS: &[&str] = &["co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "gob", "gv"];

/// The registered domain of a host name: its last two labels, or three
/// under a country's second level (`co.uk`, `com.au`).
pub fn registered(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    let labels: Vec<usize> = host.match_indices('.').map(|(at, _)| at).collect();
    match labels.len() {
        0 => host,
        1 => host,
        count => {
            let last_two = &host[labels[count - 2] + 1..];
            let (second, top) = last_two.split_once('.').unwrap_or(("", ""));
            if top.len() == 2 && SECOND_LEVELS.contains(&second) {
                if count >= 3 { &host[labels[count - 3] + 1..] } else { host }
            } else {
                last_two
            }
        }
    }
}

/// A brand and the domains it sends from.
#[derive(Clone, Debug)]
pub struct Brand {
    pub name: String,
    pub domains: Vec<String>,
}

fn lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// The built-in brand list (`data/brands.txt`).
pub fn brands() -> &'static [Brand] {
    static BRANDS: OnceLock<Vec<Brand>> = OnceLock::new();
    BRANDS.get_or_init(|| {
        lines(include_str!("../data/brands.txt"))
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let split = words.iter().position(|word| word.contains('.')).unwrap_or(words.len());
                Brand {
                    name: words[..split].join(" "),
                    domains: words[split..].iter().map(|domain| (*domain).to_owned()).collect(),
                }
            })
            .collect()
    })
}

pub fn is_freemail(domain: &str) -> bool {
    static FREEMAIL: OnceLock<Vec<&'static str>> = OnceLock::new();
    FREEMAIL.get_or_init(|| lines(include_str!("../data/freemail.txt")).collect()).contains(&domain)
}

pub fn is_shortener(host: &str) -> bool {
    static SHORTENERS: OnceLock<Vec<&'static str>> = OnceLock::new();
    let host = host.strip_prefix("www.").unwrap_or(host);
    SHORTENERS.get_or_init(|| lines(include_str!("../data/shorteners.txt")).collect()).contains(&host)
}

/// Whether `host` is on a service where anyone can publish (`data/hosting.txt`).
pub fn is_open_hosting(host: &str) -> bool {
    static HOSTING: OnceLock<Vec<String>> = OnceLock::new();
    let hosting = HOSTING.get_or_init(|| lines(include_str!("../data/hosting.txt")).map(str::to_owned).collect());
    is_under(host, hosting)
}

/// Whether `host` is one of `domains` or under one of them.
pub fn is_under(host: &str, domains: &[String]) -> bool {
    domains
        .iter()
        .any(|domain| host == domain || host.strip_suffix(domain.as_str()).is_some_and(|rest| rest.ends_with('.')))
}

/// A name with look-alike characters folded to the letter they imitate
/// (`paypa1` → `paypal`, `rnicrosoft` → `microsoft`, Cyrillic `а` → `a`).
pub fn skeleton(name: &str) -> String {
    let mut folded = String::with_capacity(name.len());
    for ch in name.chars() {
        folded.push(match ch {
            '0' | 'о' | 'ο' => 'o',
            '1' | 'l' | 'і' | 'ι' | '|' | 'ӏ' => 'l',
            '3' => 'e',
            '5' => 's',
            'а' | 'α' => 'a',
            'е' | 'ε' => 'e',
            'р' | 'ρ' => 'p',
            'с' => 'c',
            'х' | 'χ' => 'x',
            'у' => 'y',
            'ѕ' => 's',
            'ј' => 'j',
            'ԁ' => 'd',
            'ɡ' => 'g',
            other => other,
        });
    }
    folded.replace("rn", "m").replace("vv", "w").replace('i', "l")
}

/// Edits (insert, delete, substitute, swap neighbours) between two names.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// The brand domain `host` imitates, if any: its registered name is not
/// the brand's, but is a small edit away from it, or the same once
/// look-alike characters are folded.
pub fn imitated(host: &str, protected: &[String]) -> Option<String> {
    let own = registered(host);
    let own_name = own.split('.').next().unwrap_or(own);
    if own_name.len() < 4 {
        return None;
    }
    for domain in protected {
        // A brand's own name under another suffix (`mercadolibre.com.mx`
        // beside `mercadolibre.com`) is the brand abroad or no one, not a
        // look-alike of a sibling brand one letter away.
        if is_under(host, std::slice::from_ref(domain)) || own == domain || domain.split('.').next() == Some(own_name) {
            return None;
        }
    }
    let own_skeleton = skeleton(own_name);
    // Hyphenated words (`paypal-secure`): a brand's name exactly, once folded.
    let words: Vec<String> =
        if own_name.contains('-') { own_name.split('-').map(skeleton).collect() } else { Vec::new() };
    protected
        .iter()
        .find(|domain| {
            let name = domain.split('.').next().unwrap_or(domain);
            // Short names are a small edit from many ordinary words.
            let allowed = match name.len() {
                9.. => 2,
                6..=8 => 1,
                _ => 0,
            };
            let folded = skeleton(name);
            name.len() >= 5
                && own_name != name
                && (own_skeleton == folded
                    || words.contains(&folded)
                    || (own_name.len().abs_diff(name.len()) <= allowed && distance(own_name, name) <= allowed))
        })
        .cloned()
}

/// Every brand domain and the organisation's own, for [`imitated`].
pub fn protected_domains(own: &[String]) -> Vec<String> {
    let mut domains: Vec<String> = brands().iter().flat_map(|brand| brand.domains.iter().cloned()).collect();
    domains.extend(own.iter().cloned());
    domains.sort();
    domains.dedup();
    domains
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_domains() {
        assert_eq!(registered("login.secure.paypal.com"), "paypal.com");
        assert_eq!(registered("mail.example.co.uk"), "example.co.uk");
        assert_eq!(registered("localhost"), "localhost");
        assert_eq!(registered("example.co.uk"), "example.co.uk");
    }

    #[test]
    fn look_alikes() {
        let protected = protected_domains(&["riposte-corp.com".to_owned()]);
        assert_eq!(imitated("paypa1.com", &protected).as_deref(), Some("paypal.com"));
        assert_eq!(imitated("secure.rnicrosoft.com", &protected).as_deref(), Some("microsoft.com"));
        assert_eq!(imitated("riposte-c0rp.com", &protected).as_deref(), Some("riposte-corp.com"));
        assert_eq!(imitated("www.paypal.com", &protected), None);
        assert_eq!(imitated("paypal-secure.com", &protected).as_deref(), Some("paypal.com"), "combosquatting");
        assert_eq!(imitated("web-design.com", &protected), None);
        // A brand abroad is not a look-alike of its sibling one letter away.
        assert_eq!(imitated("mercadolibre.com.mx", &protected), None);
        assert_eq!(imitated("www.mercadolibre.cl", &protected), None);
        assert_eq!(imitated("mercadolivre-seguro.com", &protected).as_deref(), Some("mercadolivre.com.br"));
        // Regional banks and common words near brand names are left alone.
        assert_eq!(imitated("sparkasse-koelnbonn.de", &protected), None);
        assert_eq!(imitated("telecom.com.ar", &protected), None);
        assert_eq!(imitated("correo.com.uy", &protected), None);
        assert_eq!(imitated("acme-cloud.com", &protected), None, "not icloud");
        assert_eq!(imitated("email.cz", &protected), None, "not gmail");
        assert_eq!(imitated("example.org", &protected), None);
        assert_eq!(distance("paypal", "paypla"), 1, "a swap is one edit");
    }
}

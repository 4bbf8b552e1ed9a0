//! Words phishing leans on: a lure to sign in or confirm details, pressure
//! of time, and payment fraud; in English, French, German, Dutch, Spanish
//! and Portuguese. Each list is a category: a message scores once per category.
//! And the function words that name which of these languages a message is
//! written in (`language_of`).

use std::collections::HashMap;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

/// A category of wording.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Wording {
    CredentialLure,
    Urgency,
    PaymentFraud,
    /// Prizes, easy money, crypto giveaways, dating come-ons.
    Scam,
}

const CREDENTIAL_LURE: &[&str] = &[
    "verify your account",
    "verify your identity",
    "confirm your account",
    "confirm your identity",
    "update your account",
    "update your payment",
    "update your billing",
    "validate your account",
    "your account has been suspended",
    "your account has been locked",
    "your account will be suspended",
    "your account will be closed",
    "unusual sign-in",
    "unusual signin",
    "sign-in activity",
    "signin activity",
    "unusual activity",
    "suspicious activity",
    "reset your password",
    "your password expires",
    "password will expire",
    "password is expiring",
    "password has expired",
    "password expired",
    "mailbox is full",
    "mailbox quota",
    "storage is full",
    "re-activate",
    "reactivate your",
    "unlock your account",
    "sign in to view",
    "log in to view",
    "login to view",
    "view the shared document",
    "pending messages",
    "action required",
    "account suspension",
    "password expir",
    "email quota",
    "mailbox upgrade",
    "verify your wallet",
    "seed phrase",
    "recovery phrase",
    "security alert",
    "confirm your email",
    "verify your email",
    "account verification",
    "shared a document",
    "shared a file",
    "access your document",
    "secure message",
    "voicemail",
    "package could not be delivered",
    "atualize seus dados",
    "seus pontos",
    "pontos expirando",
    "aktualisieren sie ihre daten",
    "vérifier votre compte",
    "confirmer votre identité",
    "votre compte a été suspendu",
    "konto bestätigen",
    "ihr konto wurde gesperrt",
    "verifique su cuenta",
    "su cuenta ha sido suspendida",
    "verifique sua conta",
    "sua conta foi suspensa",
    "confirme seus dados",
    "atualize seu cadastro",
    "sua conta será bloqueada",
    "ihr konto wurde eingeschränkt",
    "bestätigen sie ihre identität",
    "bestätigen sie ihr konto",
    "verifizieren sie ihr konto",
    "verifizieren sie ihre identität",
    "uw account is geblokkeerd",
    "uw account wordt geblokkeerd",
    "bevestig uw account",
    "bevestig uw identiteit",
    "verifieer uw account",
    "verifieer uw identiteit",
    "confirme sus datos",
    "actualice sus datos",
    "verifique su identidad",
    "confirmez vos informations",
    "mettre à jour vos informations",
    "votre compte sera suspendu",
];

const URGENCY: &[&str] = &[
    "urgent",
    "immediately",
    "within 24 hours",
    "within 48 hours",
    "act now",
    "final notice",
    "last warning",
    "expires today",
    "expiring today",
    "final warning",
    "account will be deleted",
    "avoid suspension",
    "asset freeze",
    "expirando hoje",
    "letzte mahnung",
    "as soon as possible",
    "failure to do so",
    "will be permanently",
    "immédiatement",
    "dringend",
    "sofort",
    "urgente",
    "inmediatamente",
    "evite bloqueio",
    "será bloqueado",
    "innerhalb von 24 stunden",
    "laatste mededeling",
    "binnen 24 uur",
    "último aviso",
    "en 24 horas",
    "dernier avis",
    "sous 24 heures",
    "sous 48 heures",
];

const PAYMENT_FRAUD: &[&str] = &[
    "gift card",
    "geschenkkarte",
    "cadeaukaart",
    "cadeaubon",
    "cartão presente",
    "vale-presente",
    "tarjeta regalo",
    "carte cadeau",
    "wire transfer",
    "bank details have changed",
    "new bank account",
    "payment is overdue",
    "outstanding invoice",
    "overdue invoice",
    "refund of",
    "you have won",
    "claim your prize",
    "tax refund",
    "bitcoin",
    "invoice is attached",
    "payment confirmation",
    "fatura em aberto",
    "fatura vencida",
    "fatura em atraso",
    "boleto vencido",
    "boleto em aberto",
    "offene rechnung",
    "rechnung ist überfällig",
    "unbezahlte rechnung",
    "facture impayée",
    "cryptocurrency wallet",
    "inheritance",
    "beneficiary",
    "virement",
    "überweisung",
    "transferencia bancaria",
    "taxa de importação",
    "taxa alfandegária",
    "pagamento pendente",
    "zahlung ausstehend",
    "zollgebühr",
    "zollgebühren",
    "openstaande factuur",
    "douanekosten",
    "achterstallige betaling",
    "pago pendiente",
    "factura pendiente",
    "tasa de aduana",
    "paiement en attente",
    "frais de douane",
];

const SCAM: &[&str] = &[
    "congratulations",
    "you have been selected",
    "you've been selected",
    "claim your",
    "airdrop",
    "giveaway",
    "free crypto",
    "token allocation",
    "usdt",
    "double your",
    "investment opportunity",
    "guaranteed profit",
    "make money",
    "earn $",
    "cashback",
    "lottery",
    "jackpot",
    "winner",
    "singles",
    "dating",
    "hookup",
    "lonely",
    "next of kin",
    "dying bed",
    "beloved friend",
    "my late husband",
    "consignment box",
    "compensation fund",
    "unclaimed fund",
    "atm card",
    "barrister",
    "weight loss",
    "lose weight",
    "viagra",
    "casino",
    "sie wurden ausgewählt",
    "gewonnen",
    "gewinnspiel",
    "félicitations",
    "vous avez gagné",
    "felicidades",
    "ha ganado",
    "parabéns",
    "você ganhou",
    "free spins",
    "gutschein im wert",
    "freispiele",
    "gratis spins",
    "você foi selecionado",
    "rodadas grátis",
    "ha sido seleccionado",
    "has sido seleccionado",
    "vous avez été sélectionné",
];

/// Whether `text` holds `words` starting and ending at word boundaries
/// (`dating` is not in `updating`). A phrase ending in a non-letter
/// (`earn $`) or in `expir` is a prefix and may run on.
pub fn contains_words(text: &str, words: &str) -> bool {
    text.match_indices(words).any(|(at, _)| at_word_bounds(text, at, words))
}

/// Whether `words`, found in `text` at `at`, starts and ends at word
/// boundaries (see [`contains_words`]).
fn at_word_bounds(text: &str, at: usize, words: &str) -> bool {
    let open_end = words.ends_with(|ch: char| !ch.is_alphanumeric()) || words.ends_with("expir");
    let before = text[..at].chars().next_back().is_none_or(|ch| !ch.is_alphanumeric());
    let after = open_end || text[at + words.len()..].chars().next().is_none_or(|ch| !ch.is_alphanumeric());
    before && after
}

/// Function words common in one of the languages the checks know and rare
/// in the others and in addresses (`com`), time zones (`EST`) and the
/// other five (`la`, `des`, `es`, `je`, `te`, `do`, `of` are none of them).
const FUNCTION_WORDS: [(&str, &[&str]); 6] = [
    (
        "en",
        &[
            "the", "and", "you", "your", "to", "for", "with", "this", "that", "are", "have", "our", "it", "not",
            "please", "would",
        ],
    ),
    (
        "de",
        &[
            "und", "der", "ist", "nicht", "sie", "ihre", "mit", "für", "wir", "auf", "bitte", "eine", "ein", "zu",
            "dem", "sich", "auch", "wird",
        ],
    ),
    (
        "fr",
        &[
            "vous", "votre", "vos", "pour", "avec", "nous", "une", "dans", "pas", "qui", "merci", "sont", "être",
            "cette", "aux", "sur", "notre", "nos", "ces", "leur", "très", "peut", "comme",
        ],
    ),
    (
        "es",
        &[
            "los", "las", "usted", "ustedes", "su", "sus", "con", "una", "del", "pero", "gracias", "nuestro",
            "nuestra", "muy", "hola", "hemos", "también", "ya", "nosotros", "tiene", "puede", "así", "aquí", "cuando",
            "fue", "están",
        ],
    ),
    (
        "pt",
        &[
            "não", "você", "seu", "sua", "seus", "uma", "pelo", "pela", "já", "até", "obrigado", "nosso", "nossa",
            "em", "ao", "olá", "são", "também", "isso", "essa", "pode", "foi", "muito", "quando", "estão", "desta",
            "deste",
        ],
    ),
    (
        "nl",
        &[
            "het", "een", "van", "niet", "uw", "voor", "wij", "zijn", "ons", "bij", "naar", "ook", "dat", "deze",
            "wordt", "kunt", "om", "graag",
        ],
    ),
];

/// The languages [`language_of`] names.
pub fn languages() -> impl Iterator<Item = &'static str> {
    FUNCTION_WORDS.iter().map(|(language, _)| *language)
}

/// Distinct function words a text needs of its most used language, and how
/// many times those of the next one, for its language to be named. Each
/// word counts once: a long footer or hidden padding in another language
/// cannot outweigh a message's own words by repeating a few.
const LANGUAGE_MIN_WORDS: usize = 5;
const LANGUAGE_LEAD: usize = 2;

/// The language `text` is mostly written in (`en`, `de`, `fr`, `es`, `pt`,
/// `nl`), or `None` when too few of its words say, or two languages say
/// nearly as much.
pub fn language_of(text: &str) -> Option<&'static str> {
    // Each function word: its language, and its place among all of them.
    static FUNCTION_WORD: OnceLock<HashMap<&'static str, (usize, usize)>> = OnceLock::new();
    let function_word = FUNCTION_WORD.get_or_init(|| {
        FUNCTION_WORDS
            .iter()
            .enumerate()
            .flat_map(|(language, (_, words))| words.iter().map(move |word| (*word, language)))
            .enumerate()
            .map(|(place, (word, language))| (word, (language, place)))
            .collect()
    });
    let mut counts = [0usize; FUNCTION_WORDS.len()];
    let mut seen = vec![false; function_word.len()];
    let mut lower = String::new();
    for word in text.split(|ch: char| !ch.is_alphabetic()).filter(|word| (2..=8).contains(&word.len())) {
        lower.clear();
        lower.extend(word.chars().flat_map(char::to_lowercase));
        if let Some(&(language, place)) = function_word.get(lower.as_str())
            && !std::mem::replace(&mut seen[place], true)
        {
            counts[language] += 1;
        }
    }
    let mut ranked: Vec<(usize, &'static str)> =
        counts.iter().zip(FUNCTION_WORDS).map(|(&count, (language, _))| (count, language)).collect();
    ranked.sort_by_key(|&(count, _)| std::cmp::Reverse(count));
    let ((first, language), (second, _)) = (ranked[0], ranked[1]);
    (first >= LANGUAGE_MIN_WORDS && first >= LANGUAGE_LEAD * second).then_some(language)
}

const CATEGORIES: [(Wording, &[&str]); 4] = [
    (Wording::CredentialLure, CREDENTIAL_LURE),
    (Wording::Urgency, URGENCY),
    (Wording::PaymentFraud, PAYMENT_FRAUD),
    (Wording::Scam, SCAM),
];

/// Every phrase of every category in one automaton: a text is read once,
/// not once per phrase (hundreds of them, over texts of many kilobytes).
struct Lexicon {
    automaton: AhoCorasick,
    /// By pattern id: the category and the phrase.
    phrases: Vec<(usize, &'static str)>,
}

fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| {
        let phrases: Vec<(usize, &'static str)> = CATEGORIES
            .iter()
            .enumerate()
            .flat_map(|(category, (_, phrases))| phrases.iter().map(move |phrase| (category, *phrase)))
            .collect();
        let automaton =
            AhoCorasick::new(phrases.iter().map(|(_, phrase)| phrase)).expect("a few hundred short phrases");
        Lexicon { automaton, phrases }
    })
}

/// The categories `text` falls in, with the first phrase (in list order)
/// found of each.
pub fn wording(text: &str) -> Vec<(Wording, &'static str)> {
    let lower = text.to_lowercase();
    let lexicon = lexicon();
    // The lowest pattern id found of each category.
    let mut first: [Option<usize>; CATEGORIES.len()] = [None; CATEGORIES.len()];
    for found in lexicon.automaton.find_overlapping_iter(&lower) {
        let id = found.pattern().as_usize();
        let (category, phrase) = lexicon.phrases[id];
        if first[category].is_none_or(|known| id < known) && at_word_bounds(&lower, found.start(), phrase) {
            first[category] = Some(id);
        }
    }
    first
        .iter()
        .enumerate()
        .filter_map(|(category, id)| id.map(|id| (CATEGORIES[category].0, lexicon.phrases[id].1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_word_names_one_language() {
        let mut seen = std::collections::HashSet::new();
        for (_, words) in FUNCTION_WORDS {
            for word in words {
                assert!(seen.insert(word), "{word} is in two lists (or twice in one)");
                // Words are read from 2 to 8 bytes long.
                assert!((2..=8).contains(&word.len()) && *word == word.to_lowercase(), "{word}");
            }
        }
    }

    #[test]
    fn addresses_footers_and_padding_do_not_name_the_language() {
        // `com` of addresses, `do not reply`, an EST time: English.
        let english = "Your order has shipped and you can track it at https://shop.example.com/track; write to \
                       help@shop.example.com with any questions. This is an automated message that we would like \
                       you to keep, please do not reply to it. Sent 10:00 EST.";
        assert_eq!(language_of(english), Some("en"));
        // `le` and `es`: Spanish, not French or German.
        let spanish = "Le informamos que su pedido ya está en camino. Gracias por confiar en nosotros; \
                       si tiene preguntas, nuestro equipo le atenderá con gusto. Saludos, el equipo de ventas";
        assert_eq!(language_of(spanish), Some("es"));
        // German repeated a hundred times (hidden text, a footer) counts as
        // the few German words it is.
        let padded = format!("{english} {}", "und der ist nicht ".repeat(100));
        assert_eq!(language_of(&padded), Some("en"));
        // Four distinct words are too few; five are enough.
        assert_eq!(language_of("the the and you your the"), None);
        assert_eq!(language_of("the and you your this"), Some("en"));
        // A lead of less than twice: no language.
        assert_eq!(language_of("the and you your this und der ist"), None);
    }

    #[test]
    fn a_message_is_named_by_the_function_words_it_uses_most() {
        for (text, expected) in [
            (
                "Your invoice for November is attached. Please pay it by the end of the month, and thank you for your order.",
                Some("en"),
            ),
            (
                "Bitte bestätigen Sie Ihre Anmeldung, damit wir Ihnen den Newsletter auch zusenden können. Das ist nicht schwer und dauert nur eine Minute.",
                Some("de"),
            ),
            (
                "Les soldes commencent demain dans votre boutique : -30 % sur toute la collection, et la livraison est offerte pour les membres. Merci de votre fidélité.",
                Some("fr"),
            ),
            (
                "Hola, hemos recibido una solicitud para restablecer la contraseña de su cuenta. Si no fue usted, puede ignorar este mensaje con toda tranquilidad, gracias.",
                Some("es"),
            ),
            (
                "Olá, a fatura de novembro da sua unidade consumidora já está disponível. Você pode pagar pelo Pix ou boleto até o dia 28. Se já pagou, não considere esta mensagem. Obrigado.",
                Some("pt"),
            ),
            (
                "Uw bestelling is verzonden en wordt morgen bij u bezorgd. U kunt de zending volgen via de link in deze mail. Ook retourneren is gratis.",
                Some("nl"),
            ),
            // Too few words to say.
            ("Hi, thanks!", None),
            ("", None),
            // Two languages saying as much: neither.
            ("the and you your to of und der das ist nicht sie", None),
        ] {
            assert_eq!(language_of(text), expected, "{text}");
        }
    }

    proptest::proptest! {
        /// One automaton finds what searching for each phrase in turn finds.
        #[test]
        fn the_automaton_finds_what_each_phrase_finds(
            words in proptest::collection::vec(proptest::sample::select(vec![
                "verify", "your", "account", "urgent", "gift", "card", "you", "have", "won", "dating",
                "updating", "earn", "$5", "password", "expired", "expires", "bevestig", "uw", "winner", "Ü", " ",
                "claim", "prize", "urgente", "offene", "rechnung", "İ", "!", "-", "ist", "überfällig",
            ]), 0..24),
        ) {
            let text = words.join(" ");
            let lower = text.to_lowercase();
            let one_by_one: Vec<(Wording, &str)> = CATEGORIES
                .iter()
                .filter_map(|(category, phrases)| {
                    phrases.iter().find(|phrase| contains_words(&lower, phrase)).map(|phrase| (*category, *phrase))
                })
                .collect();
            proptest::prop_assert_eq!(wording(&text), one_by_one);
        }
    }
}

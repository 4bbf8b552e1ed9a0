//! Words phishing leans on: a lure to sign in or confirm details, pressure
//! of time, and payment fraud; in English, French, German, Spanish and
//! Portuguese. Each list is a category: a message scores once per category.

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
];

const PAYMENT_FRAUD: &[&str] = &[
    "gift card",
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
    "fatura",
    "boleto",
    "rechnung",
    "facture impayée",
    "cryptocurrency wallet",
    "inheritance",
    "beneficiary",
    "virement",
    "überweisung",
    "transferencia bancaria",
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
];

/// Whether `text` holds `words` starting and ending at word boundaries
/// (`dating` is not in `updating`). A phrase ending in a non-letter
/// (`earn $`) or in `expir` is a prefix and may run on.
pub fn contains_words(text: &str, words: &str) -> bool {
    let open_end = words.ends_with(|ch: char| !ch.is_alphanumeric()) || words.ends_with("expir");
    text.match_indices(words).any(|(at, _)| {
        let before = text[..at].chars().next_back().is_none_or(|ch| !ch.is_alphanumeric());
        let after = open_end || text[at + words.len()..].chars().next().is_none_or(|ch| !ch.is_alphanumeric());
        before && after
    })
}

/// The categories `text` falls in, with the first phrase found of each.
pub fn wording(text: &str) -> Vec<(Wording, &'static str)> {
    let lower = text.to_lowercase();
    [
        (Wording::CredentialLure, CREDENTIAL_LURE),
        (Wording::Urgency, URGENCY),
        (Wording::PaymentFraud, PAYMENT_FRAUD),
        (Wording::Scam, SCAM),
    ]
    .into_iter()
    .filter_map(|(category, phrases)| {
        phrases.iter().find(|phrase| contains_words(&lower, phrase)).map(|phrase| (category, *phrase))
    })
    .collect()
}

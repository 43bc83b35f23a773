//! Normalisation of the raw values a Patient carries: names (Unicode
//! folding and transliteration), phone numbers, FHIR dates, identifiers and
//! localities. Every comparison and blocking key works on these forms.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Name particles that are kept apart from the core of a name, so that
/// "van der Berg", "Berg" and "al-Hassan", "Hassan" compare on their core.
const PARTICLES: &[&str] = &[
    "van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "des", "la", "le", "al",
    "el", "bin", "ibn", "bint", "ben", "abu", "ter", "ten", "dos", "das",
];

/// Folds text to lowercase ASCII letters, digits and single spaces:
/// compatibility decomposition (ligatures such as "ﬁ" become "fi"), marks
/// stripped, Cyrillic and Greek transliterated, Latin letters without a
/// decomposition (ß, ø, æ, œ, ł, đ, þ) spelled out, punctuation dropped
/// (apostrophes join, everything else separates).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous = ' ';
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        for c in c.to_lowercase() {
            // Greek "ου" is the sound "u" (Παπαδόπουλος → papadopoulos).
            if c == 'υ' && previous == 'ο' {
                out.push('u');
            } else {
                push_folded(&mut out, c);
            }
            previous = c;
        }
    }
    let mut result = String::with_capacity(out.len());
    for word in out.split_whitespace() {
        if !result.is_empty() {
            result.push(' ');
        }
        result.push_str(word);
    }
    result
}

fn push_folded(out: &mut String, c: char) {
    match c {
        'a'..='z' | '0'..='9' => out.push(c),
        '\'' | '’' | '`' | 'ʼ' | '‘' => {}
        _ => {
            if let Some(latin) = transliterate(c) {
                out.push_str(latin);
            } else if c.is_alphanumeric() {
                // An unknown script: keep the letter rather than lose the name.
                out.push(c);
            } else {
                out.push(' ');
            }
        }
    }
}

/// The Latin spelling of one lowercase letter that NFKD leaves alone.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'ø' => "o",
        'æ' => "ae",
        'œ' => "oe",
        'ł' => "l",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ı' => "i",
        'ħ' => "h",
        'ŋ' => "ng",
        // Cyrillic (Russian, Ukrainian, Bulgarian, Serbian letters).
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'ґ' => "g",
        'д' => "d",
        'е' | 'э' | 'є' => "e",
        'ё' => "e",
        'ж' => "zh",
        'з' => "z",
        'и' | 'і' => "i",
        'ї' => "yi",
        'й' => "y",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "f",
        'х' => "kh",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "shch",
        'ъ' | 'ь' => "",
        'ы' => "y",
        'ю' => "yu",
        'я' => "ya",
        'ј' => "j",
        'љ' => "lj",
        'њ' => "nj",
        'ћ' => "c",
        'џ' => "dz",
        // Greek (after NFKD has removed the tonos).
        'α' => "a",
        'β' => "v",
        'γ' => "g",
        'δ' => "d",
        'ε' => "e",
        'ζ' => "z",
        'η' => "i",
        'θ' => "th",
        'ι' => "i",
        'κ' => "k",
        'λ' => "l",
        'μ' => "m",
        'ν' => "n",
        'ξ' => "x",
        'ο' => "o",
        'π' => "p",
        'ρ' => "r",
        'σ' | 'ς' => "s",
        'τ' => "t",
        'υ' => "y",
        'φ' => "f",
        'χ' => "ch",
        'ψ' => "ps",
        'ω' => "o",
        _ => return None,
    })
}

/// A person's name part split into its core words and its particles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameParts {
    /// Core words, folded, in order ("berg" of "van der Berg").
    pub core: Vec<String>,
    /// Particles found before or inside the name ("van", "der").
    pub particles: Vec<String>,
}

/// Folds a name and splits it into words; particles are set apart unless
/// the name is nothing but particles ("De" as a family name stays core).
pub fn name_parts(raw: &str) -> NameParts {
    let folded = fold(raw);
    let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    let mut parts = NameParts::default();
    let all_particles = words.iter().all(|w| PARTICLES.contains(w));
    for word in words {
        // Letters only: digits in a name are typing noise.
        let letters: String = word.chars().filter(|c| c.is_alphabetic()).collect();
        if letters.is_empty() {
            continue;
        }
        if !all_particles && PARTICLES.contains(&letters.as_str()) {
            parts.particles.push(letters);
        } else {
            parts.core.push(letters);
        }
    }
    parts
}

/// A phone number reduced to its national significant digits: digits only,
/// an international prefix ("00" or "+") and the default country code
/// removed, a leading trunk "0" removed, then the last `significant_digits`.
/// None when fewer than 6 digits remain.
pub fn phone(raw: &str, default_country_code: &str, significant_digits: usize) -> Option<String> {
    let mut digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    if let Some(rest) = digits.strip_prefix("00") {
        digits = rest.to_string();
    }
    if !default_country_code.is_empty()
        && digits.len() > significant_digits
        && digits.starts_with(default_country_code)
    {
        digits = digits[default_country_code.len()..].to_string();
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() < 6 {
        return None;
    }
    let start = trimmed.len().saturating_sub(significant_digits);
    Some(trimmed[start..].to_string())
}

/// A FHIR `date` (or the date part of a `dateTime`) at its precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PartialDate {
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

impl PartialDate {
    /// Parses "YYYY", "YYYY-MM", "YYYY-MM-DD" or a dateTime; None when the
    /// text is not a plausible date.
    pub fn parse(raw: &str) -> Option<PartialDate> {
        let raw = raw.trim();
        let date = raw.split('T').next().unwrap_or(raw);
        let mut pieces = date.split('-');
        let year: u16 = parse_digits(pieces.next()?, 4)?;
        let month = match pieces.next() {
            Some(text) => Some(parse_digits::<u8>(text, 2)?).filter(|m| (1..=12).contains(m)),
            None => None,
        };
        let day = match (month, pieces.next()) {
            (Some(_), Some(text)) => {
                Some(parse_digits::<u8>(text, 2)?).filter(|d| (1..=31).contains(d))
            }
            _ => None,
        };
        if !(1800..=2200).contains(&year) {
            return None;
        }
        Some(PartialDate {
            year,
            month,
            day: if month.is_some() { day } else { None },
        })
    }

    /// True when year, month and day are all known.
    pub fn is_full(&self) -> bool {
        self.month.is_some() && self.day.is_some()
    }

    /// "YYYYMMDD" when the date is full.
    pub fn digits(&self) -> Option<String> {
        Some(format!(
            "{:04}{:02}{:02}",
            self.year, self.month?, self.day?
        ))
    }
}

fn parse_digits<T: std::str::FromStr>(text: &str, len: usize) -> Option<T> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An identifier value as compared: trimmed, spaces, hyphens, dots and
/// slashes removed, uppercased when `uppercase`.
pub fn identifier_value(raw: &str, uppercase: bool) -> String {
    let kept = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/'));
    if uppercase {
        kept.flat_map(char::to_uppercase).collect()
    } else {
        kept.collect()
    }
}

/// A locality or address line folded like a name, digits kept.
pub fn place(raw: &str) -> String {
    fold(raw)
}

/// A postal code: letters and digits only, uppercased.
pub fn postal_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

//! Canonical units for quantity search (search.html#quantity): a small
//! table of common UCUM codes with exact decimal factors to one base unit
//! per kind, so `5.4 mg` and `0.0054 g` index alike.

use crate::fhirpath::Decimal;

/// The UCUM code system URI.
pub const UCUM: &str = "http://unitsofmeasure.org";

/// `(UCUM code, exact factor to the base unit, base unit code)`. Factors are
/// exact UCUM definitions: `[lb_av]` is 453.59237 g, `[in_i]` 2.54 cm,
/// `mo` a Julian month (2 629 800 s) and `a` a Julian year
/// (365.25 d = 31 557 600 s), `mm[Hg]` 133.322 Pa (UCUM's `m[Hg]` is
/// 133.3220 kPa) and `cm[H2O]` 98.0665 Pa. Temperatures map only to
/// themselves: `Cel`, `[degF]` and `K` differ by an offset, not a factor,
/// so they are not converted into each other. Rates are kept per minute
/// (`/h` would need an inexact factor and is left out).
const UNITS: &[(&str, &str, &str)] = &[
    // mass → g
    ("t", "1000000", "g"),
    ("kg", "1000", "g"),
    ("g", "1", "g"),
    ("mg", "0.001", "g"),
    ("ug", "0.000001", "g"),
    ("ng", "0.000000001", "g"),
    ("pg", "0.000000000001", "g"),
    ("[lb_av]", "453.59237", "g"),
    ("[oz_av]", "28.349523125", "g"),
    // length → m
    ("km", "1000", "m"),
    ("m", "1", "m"),
    ("dm", "0.1", "m"),
    ("cm", "0.01", "m"),
    ("mm", "0.001", "m"),
    ("um", "0.000001", "m"),
    ("nm", "0.000000001", "m"),
    ("[in_i]", "0.0254", "m"),
    ("[ft_i]", "0.3048", "m"),
    ("[mi_i]", "1609.344", "m"),
    // time → s
    ("us", "0.000001", "s"),
    ("ms", "0.001", "s"),
    ("s", "1", "s"),
    ("min", "60", "s"),
    ("h", "3600", "s"),
    ("d", "86400", "s"),
    ("wk", "604800", "s"),
    ("mo", "2629800", "s"),
    ("a", "31557600", "s"),
    // volume → L (UCUM accepts `l` and `L`)
    ("m3", "1000", "L"),
    ("L", "1", "L"),
    ("l", "1", "L"),
    ("dL", "0.1", "L"),
    ("dl", "0.1", "L"),
    ("cL", "0.01", "L"),
    ("mL", "0.001", "L"),
    ("ml", "0.001", "L"),
    ("cm3", "0.001", "L"),
    ("uL", "0.000001", "L"),
    ("ul", "0.000001", "L"),
    ("mm3", "0.000001", "L"),
    ("fL", "0.000000000000001", "L"),
    // amount of substance → mol
    ("mol", "1", "mol"),
    ("mmol", "0.001", "mol"),
    ("umol", "0.000001", "mol"),
    ("nmol", "0.000000001", "mol"),
    ("pmol", "0.000000000001", "mol"),
    // mass concentration → g/L
    ("g/L", "1", "g/L"),
    ("g/dL", "10", "g/L"),
    ("g/mL", "1000", "g/L"),
    ("mg/L", "0.001", "g/L"),
    ("mg/dL", "0.01", "g/L"),
    ("mg/mL", "1", "g/L"),
    ("ug/L", "0.000001", "g/L"),
    ("ug/dL", "0.00001", "g/L"),
    ("ug/mL", "0.001", "g/L"),
    ("ng/L", "0.000000001", "g/L"),
    ("ng/dL", "0.00000001", "g/L"),
    ("ng/mL", "0.000001", "g/L"),
    ("pg/mL", "0.000000001", "g/L"),
    // substance concentration → mol/L
    ("mol/L", "1", "mol/L"),
    ("mmol/L", "0.001", "mol/L"),
    ("umol/L", "0.000001", "mol/L"),
    ("nmol/L", "0.000000001", "mol/L"),
    ("pmol/L", "0.000000000001", "mol/L"),
    // pressure → Pa
    ("Pa", "1", "Pa"),
    ("hPa", "100", "Pa"),
    ("kPa", "1000", "Pa"),
    ("bar", "100000", "Pa"),
    ("mbar", "100", "Pa"),
    ("mm[Hg]", "133.322", "Pa"),
    ("cm[H2O]", "98.0665", "Pa"),
    // temperature: no conversion (offsets)
    ("Cel", "1", "Cel"),
    ("[degF]", "1", "[degF]"),
    ("K", "1", "K"),
    // fractions
    ("%", "1", "%"),
    // rates → /min
    ("/min", "1", "/min"),
    ("1/min", "1", "/min"),
    ("{beats}/min", "1", "/min"),
    ("{breaths}/min", "1", "/min"),
    ("/s", "60", "/min"),
    // body mass index and surface densities → kg/m2
    ("kg/m2", "1", "kg/m2"),
    ("g/m2", "0.001", "kg/m2"),
];

/// The factor to the base unit and the base unit's code, for a UCUM code
/// in the table.
pub(crate) fn unit_factor(code: &str) -> Option<(Decimal, &'static str)> {
    let (_, factor, base) = UNITS.iter().find(|(c, _, _)| *c == code)?;
    Some((Decimal::parse(factor)?, base))
}

/// A quantity in its canonical unit: `value` × factor and the base unit
/// code (`5.4 mg` → `(0.0054, "g")`, `100 mg/dL` → `(1, "g/L")`,
/// `120 mm[Hg]` → `(15998.64, "Pa")`), with trailing zeros dropped. Only
/// for `system` [`UCUM`] and a code in the table above; otherwise `None`,
/// and the quantity is indexed as written.
pub fn canonical_quantity(
    value: Decimal,
    system: Option<&str>,
    code: &str,
) -> Option<(Decimal, String)> {
    if system != Some(UCUM) {
        return None;
    }
    let (factor, base) = unit_factor(code)?;
    Some((value.checked_mul(factor)?.normalized(), base.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: (&str, &str), expected: Option<(&str, &str)>) {
        let (value, code) = input;
        let got = canonical_quantity(Decimal::parse(value).unwrap(), Some(UCUM), code);
        let want = expected.map(|(v, b)| (Decimal::parse(v).unwrap(), b.to_owned()));
        assert_eq!(got, want, "canonical_quantity({value} {code})");
        if let Some((v, _)) = &got {
            // exact decimals print without float noise
            assert_eq!(v.to_string(), expected.unwrap().0, "{value} {code}");
        }
    }

    #[test]
    fn table_is_well_formed() {
        for (code, factor, base) in UNITS {
            let f = Decimal::parse(factor).unwrap();
            assert!(!f.is_negative() && !f.is_zero(), "{code}");
            assert_eq!(
                unit_factor(base).unwrap().1,
                *base,
                "base {base} maps to itself"
            );
            assert_eq!(
                UNITS.iter().filter(|(c, _, _)| c == code).count(),
                1,
                "{code}"
            );
        }
    }

    #[test]
    fn canonical_units() {
        check(("5.4", "mg"), Some(("0.0054", "g")));
        check(("5400", "ug"), Some(("0.0054", "g")));
        check(("0.0054", "g"), Some(("0.0054", "g")));
        check(("70", "kg"), Some(("70000", "g")));
        check(("1", "[lb_av]"), Some(("453.59237", "g")));
        check(("2", "[oz_av]"), Some(("56.69904625", "g")));
        check(("3", "ng"), Some(("0.000000003", "g")));
        check(("180", "cm"), Some(("1.8", "m")));
        check(("6", "[ft_i]"), Some(("1.8288", "m")));
        check(("12", "[in_i]"), Some(("0.3048", "m")));
        check(("2.5", "mm"), Some(("0.0025", "m")));
        check(("90", "min"), Some(("5400", "s")));
        check(("1.5", "h"), Some(("5400", "s")));
        check(("2", "wk"), Some(("1209600", "s")));
        check(("1", "a"), Some(("31557600", "s")));
        check(("12", "mo"), Some(("31557600", "s")));
        check(("250", "ms"), Some(("0.25", "s")));
        check(("500", "mL"), Some(("0.5", "L")));
        check(("500", "ml"), Some(("0.5", "L")));
        check(("1.5", "L"), Some(("1.5", "L")));
        check(("90", "fL"), Some(("0.00000000000009", "L")));
        check(("5.5", "mmol"), Some(("0.0055", "mol")));
        check(("100", "mg/dL"), Some(("1", "g/L")));
        check(("1", "g/L"), Some(("1", "g/L")));
        check(("14", "g/dL"), Some(("140", "g/L")));
        check(("2.5", "ng/mL"), Some(("0.0000025", "g/L")));
        check(("5.5", "mmol/L"), Some(("0.0055", "mol/L")));
        check(("120", "umol/L"), Some(("0.00012", "mol/L")));
        check(("120", "mm[Hg]"), Some(("15998.64", "Pa")));
        check(("16", "kPa"), Some(("16000", "Pa")));
        check(("10", "cm[H2O]"), Some(("980.665", "Pa")));
        check(("37.5", "Cel"), Some(("37.5", "Cel")));
        check(("99.5", "[degF]"), Some(("99.5", "[degF]")));
        check(("310", "K"), Some(("310", "K")));
        check(("95", "%"), Some(("95", "%")));
        check(("72", "/min"), Some(("72", "/min")));
        check(("72", "{beats}/min"), Some(("72", "/min")));
        check(("16", "{breaths}/min"), Some(("16", "/min")));
        check(("1.2", "/s"), Some(("72", "/min")));
        check(("22.5", "kg/m2"), Some(("22.5", "kg/m2")));
        check(("1.50", "g"), Some(("1.5", "g")));
        check(("-3", "mg"), Some(("-0.003", "g")));
        check(("1", "MG"), None);
        check(("1", "mcg"), None);
        check(("1", "[stone_av]"), None);
        check(("1", "/h"), None);
        check(("1", ""), None);
    }

    #[test]
    fn only_ucum() {
        let v = Decimal::parse("5").unwrap();
        assert_eq!(canonical_quantity(v, None, "mg"), None);
        assert_eq!(
            canonical_quantity(v, Some("http://snomed.info/sct"), "mg"),
            None
        );
        assert_eq!(
            canonical_quantity(v, Some("http://unitsofmeasure.org/"), "mg"),
            None
        );
        assert!(canonical_quantity(v, Some(UCUM), "mg").is_some());
    }
}

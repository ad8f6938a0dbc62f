//! Kubernetes resource quantities (`100m`, `0.5`, `128Mi`, `1G`, `1e3`),
//! parsed exactly: no floating point, the value kept in billionths and
//! rounded up past that, as Kubernetes rounds up (`0.1m` is `1m`).
//!
//! Grammar: `[+-]? (DIGITS | DIGITS. | DIGITS.DIGITS | .DIGITS) SUFFIX` where
//! SUFFIX is one of `n u m "" k M G T P E`, `Ki Mi Gi Ti Pi Ei`, or an
//! exponent `e3` / `E-2`.

use std::fmt;

const NANO: i128 = 1_000_000_000;

/// A parsed quantity. Equality compares values, so `1k == 1000 == 1e3`.
#[derive(Debug, Clone)]
pub struct Quantity {
    nanos: i128,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a quantity: {reason}")]
pub struct QuantityError {
    pub input: String,
    pub reason: String,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

enum Multiplier {
    Decimal(i32),
    Binary(u32),
}

fn suffix(s: &str) -> Option<Multiplier> {
    use Multiplier::{Binary, Decimal};
    Some(match s {
        "" => Decimal(0),
        "n" => Decimal(-9),
        "u" => Decimal(-6),
        "m" => Decimal(-3),
        "k" => Decimal(3),
        "M" => Decimal(6),
        "G" => Decimal(9),
        "T" => Decimal(12),
        "P" => Decimal(15),
        "E" => Decimal(18),
        "Ki" => Binary(10),
        "Mi" => Binary(20),
        "Gi" => Binary(30),
        "Ti" => Binary(40),
        "Pi" => Binary(50),
        "Ei" => Binary(60),
        _ => {
            let exp = s.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Decimal(exp.parse().ok()?)
        }
    })
}

/// `a / b` rounded towards positive infinity, for `b > 0`.
fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b > 0 {
        q + 1
    } else {
        q
    }
}

impl Quantity {
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let fail = |reason: &str| QuantityError { input: input.to_string(), reason: reason.to_string() };
        let (negative, rest) = match input.as_bytes().first() {
            Some(b'-') => (true, &input[1..]),
            Some(b'+') => (false, &input[1..]),
            Some(_) => (false, input),
            None => return Err(fail("it is empty")),
        };
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, suffix_text) = rest.split_at(number_len);
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(fail("it has no digits"));
        }
        if frac.contains('.') {
            return Err(fail("it has more than one '.'"));
        }
        let multiplier = suffix(suffix_text).ok_or_else(|| fail(&format!("{suffix_text:?} is not a known suffix")))?;
        let digits = format!("{int}{frac}");
        let too_large = || fail("it is too large");
        let mut mantissa: i128 = digits.trim_start_matches('0').parse().or_else(|_| {
            if digits.trim_start_matches('0').is_empty() {
                Ok(0)
            } else {
                Err(too_large())
            }
        })?;
        // value = mantissa * 10^-frac * multiplier; nanos = value * 10^9.
        let mut exp10 = 9 - frac.len() as i64;
        match multiplier {
            Multiplier::Decimal(e) => exp10 += i64::from(e),
            Multiplier::Binary(bits) => {
                mantissa = mantissa.checked_mul(1i128 << bits).ok_or_else(too_large)?;
            }
        }
        let nanos = if exp10 >= 0 {
            let scale = u32::try_from(exp10).ok().and_then(|e| 10i128.checked_pow(e)).ok_or_else(too_large)?;
            mantissa.checked_mul(scale).ok_or_else(too_large)?
        } else {
            match u32::try_from(-exp10).ok().and_then(|e| 10i128.checked_pow(e)) {
                Some(scale) => div_ceil(mantissa, scale),
                // Smaller than anything representable: rounds up to one billionth.
                None => i128::from(mantissa > 0),
            }
        };
        // Kubernetes caps quantities at 2^63-1 in value.
        if nanos / NANO > i128::from(i64::MAX) {
            return Err(too_large());
        }
        Ok(Quantity { nanos: if negative { -nanos } else { nanos }, text: input.to_string() })
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The value in thousandths, rounded up (CPU millicores).
    pub fn millis(&self) -> i128 {
        div_ceil(self.nanos, NANO / 1000)
    }

    /// The value in whole units, rounded up (bytes).
    pub fn units(&self) -> i128 {
        div_ceil(self.nanos, NANO)
    }

    /// The value in billionths.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn cpu_forms() {
        assert_eq!(q("100m").millis(), 100);
        assert_eq!(q("0.5").millis(), 500);
        assert_eq!(q("1").millis(), 1000);
        assert_eq!(q("1.").millis(), 1000);
        assert_eq!(q(".25").millis(), 250);
        assert_eq!(q("2500u").millis(), 3, "rounds up");
        assert_eq!(q("0.1m").millis(), 1, "rounds up like Kubernetes");
        assert_eq!(q("1e-3").millis(), 1);
        assert_eq!(q("+2").millis(), 2000);
    }

    #[test]
    fn memory_forms() {
        assert_eq!(q("128Mi").units(), 128 * 1024 * 1024);
        assert_eq!(q("1G").units(), 1_000_000_000);
        assert_eq!(q("1e3").units(), 1000);
        assert_eq!(q("1E3").units(), 1000);
        assert_eq!(q("1E").units(), 1_000_000_000_000_000_000);
        assert_eq!(q("1.5Gi").units(), 1536 * 1024 * 1024);
        assert_eq!(q("1k"), q("1000"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("0.5Ki").units(), 512);
        assert_eq!(q("0"), q("0m"));
        assert_eq!(q("-1").units(), -1);
        assert!(q("-1").is_negative());
        assert_eq!(q("7Ei").units(), 7 << 60);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "m", "Mi", "1x", "1.2.3", "1 Mi", "1mi", "1KI", "--1", "1e", "1e+", "0x10", "1Gi5", "9Ei", "1e19",
            "1e99999",
        ] {
            let err = Quantity::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with(&format!("{bad:?} is not a quantity")), "{err}");
        }
        assert!(Quantity::parse("1.5.5").unwrap_err().reason.contains("more than one"));
        assert!(Quantity::parse("12x").unwrap_err().reason.contains("\"x\" is not a known suffix"));
    }

    const DECIMAL: [(&str, i128); 8] = [
        ("", 1),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("m", 0),
        ("n", 0),
        ("u", 0),
    ];

    proptest! {
        #[test]
        fn integers_with_suffixes_are_exact(n in 0i64..1_000_000, i in 0usize..5, bits in 0u32..5) {
            let (s, mult) = DECIMAL[i];
            prop_assert_eq!(q(&format!("{n}{s}")).units(), i128::from(n) * mult);
            let binary = ["", "Ki", "Mi", "Gi", "Ti", "Pi"][bits as usize];
            prop_assert_eq!(q(&format!("{n}{binary}")).units(), i128::from(n) << (10 * bits));
            prop_assert_eq!(q(&format!("{n}e3")), q(&format!("{n}k")));
        }

        #[test]
        fn millis_round_trip(m in 0i64..10_000_000) {
            prop_assert_eq!(q(&format!("{m}m")).millis(), i128::from(m));
            let decimal = format!("{}.{:03}", m / 1000, m % 1000);
            prop_assert_eq!(q(&decimal), q(&format!("{m}m")));
            prop_assert_eq!(q(&format!("{m}e-3")), q(&format!("{m}m")));
        }

        #[test]
        fn fractions_round_up(int in 0i64..1000, frac in "[0-9]{1,12}") {
            let v = q(&format!("{int}.{frac}"));
            let exact_nanos_floor = format!("{int}{:0<9}", &frac[..frac.len().min(9)]).parse::<i128>().unwrap();
            prop_assert!(v.nanos() >= exact_nanos_floor);
            prop_assert!(v.nanos() <= exact_nanos_floor + 1);
        }

        #[test]
        fn sign_negates(s in "[0-9]{1,6}(\\.[0-9]{1,3})?(m|k|Mi|Gi|e2)?") {
            let pos = q(&s);
            let neg = q(&format!("-{s}"));
            prop_assert_eq!(neg.nanos(), -pos.nanos());
        }

        #[test]
        fn never_panics(s in "\\PC{0,12}") {
            let _ = Quantity::parse(&s);
        }
    }
}

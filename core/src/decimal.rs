//! Exact decimal numbers: an unscaled integer written in decimal digits and a
//! scale, so no value ever passes through a float.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An exact decimal, or one of the special values PostgreSQL's `numeric` has.
///
/// `Finite` keeps the digits exactly as the source wrote them, including
/// trailing zeros (`1.50` has scale 2), because the scale is part of the value
/// users see. `digits` holds the unscaled magnitude without leading zeros
/// (`"0"` for zero).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decimal {
    Finite {
        negative: bool,
        digits: Box<str>,
        scale: u32,
    },
    NaN,
    PosInfinity,
    NegInfinity,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a decimal number: {reason}")]
pub struct ParseDecimalError {
    input: String,
    reason: &'static str,
}

impl Decimal {
    /// Builds a finite decimal from an unscaled integer and a scale.
    pub fn from_i128(unscaled: i128, scale: u32) -> Self {
        Decimal::Finite {
            negative: unscaled < 0,
            digits: unscaled.unsigned_abs().to_string().into_boxed_str(),
            scale,
        }
    }

    /// The unscaled value as an `i128`, when it fits (Arrow's Decimal128).
    pub fn to_i128(&self) -> Option<i128> {
        match self {
            Decimal::Finite {
                negative, digits, ..
            } => {
                let magnitude: i128 = digits.parse().ok()?;
                Some(if *negative { -magnitude } else { magnitude })
            }
            _ => None,
        }
    }

    pub fn scale(&self) -> Option<u32> {
        match self {
            Decimal::Finite { scale, .. } => Some(*scale),
            _ => None,
        }
    }

    /// Number of significant digits of the unscaled value.
    pub fn precision(&self) -> Option<u32> {
        match self {
            Decimal::Finite { digits, .. } => u32::try_from(digits.len()).ok(),
            _ => None,
        }
    }
}

impl FromStr for Decimal {
    type Err = ParseDecimalError;

    /// Parses the plain notation databases print (`-12.340`, `NaN`,
    /// `Infinity`, `-Infinity`), plus an optional exponent (`1.5e3`).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseDecimalError {
            input: input.chars().take(64).collect(),
            reason,
        };
        match input {
            "NaN" | "nan" => return Ok(Decimal::NaN),
            "Infinity" | "+Infinity" | "inf" => return Ok(Decimal::PosInfinity),
            "-Infinity" | "-inf" => return Ok(Decimal::NegInfinity),
            _ => {}
        }
        let (negative, rest) = match input.as_bytes().first() {
            Some(b'-') => (true, &input[1..]),
            Some(b'+') => (false, &input[1..]),
            _ => (false, input),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => {
                let exp: i64 = rest[at + 1..]
                    .parse()
                    .map_err(|_| fail("the exponent is not an integer"))?;
                (&rest[..at], exp)
            }
            None => (rest, 0),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(fail("it has no digits"));
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(fail("it has a character that is not a digit"));
        }
        let mut digits = String::with_capacity(int_part.len() + frac_part.len());
        digits.push_str(int_part);
        digits.push_str(frac_part);
        let mut scale =
            i64::try_from(frac_part.len()).map_err(|_| fail("too many digits"))? - exponent;
        if scale < 0 {
            let zeros = usize::try_from(-scale).map_err(|_| fail("the exponent is too large"))?;
            if zeros > 1_000_000 {
                return Err(fail("the exponent is too large"));
            }
            digits.extend(std::iter::repeat_n('0', zeros));
            scale = 0;
        }
        let scale = u32::try_from(scale).map_err(|_| fail("the scale is too large"))?;
        let trimmed = digits.trim_start_matches('0');
        let digits = if trimmed.is_empty() { "0" } else { trimmed };
        Ok(Decimal::Finite {
            negative: negative && digits != "0",
            digits: digits.into(),
            scale,
        })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (negative, digits, scale) = match self {
            Decimal::NaN => return f.write_str("NaN"),
            Decimal::PosInfinity => return f.write_str("Infinity"),
            Decimal::NegInfinity => return f.write_str("-Infinity"),
            Decimal::Finite {
                negative,
                digits,
                scale,
            } => (*negative, &**digits, *scale as usize),
        };
        if negative {
            f.write_str("-")?;
        }
        if scale == 0 {
            return f.write_str(digits);
        }
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            write!(f, "{int}.{frac}")
        } else {
            f.write_str("0.")?;
            for _ in digits.len()..scale {
                f.write_str("0")?;
            }
            f.write_str(digits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_keep_scale_and_sign() {
        for text in [
            "0",
            "1.50",
            "-1.50",
            "0.001",
            "-0.001",
            "123456789012345678901234567890.123",
            "NaN",
            "Infinity",
            "-Infinity",
            "0.0000",
        ] {
            let d: Decimal = text.parse().unwrap();
            assert_eq!(d.to_string(), text);
        }
    }

    #[test]
    fn leading_zeros_and_exponents_normalise() {
        assert_eq!("007.50".parse::<Decimal>().unwrap().to_string(), "7.50");
        assert_eq!("1.5e3".parse::<Decimal>().unwrap().to_string(), "1500");
        assert_eq!("15e-3".parse::<Decimal>().unwrap().to_string(), "0.015");
        assert_eq!("-0.00".parse::<Decimal>().unwrap().to_string(), "0.00");
    }

    #[test]
    fn rejects_garbage() {
        for text in ["", "-", "1.2.3", "12a", "1e", "."] {
            assert!(text.parse::<Decimal>().is_err(), "{text}");
        }
    }

    #[test]
    fn i128_conversion() {
        let d = Decimal::from_i128(-12345, 2);
        assert_eq!(d.to_string(), "-123.45");
        assert_eq!(d.to_i128(), Some(-12345));
    }
}

//! The custom formats of the schemas: parsing and canonical text.
//!
//! Decimal text rules: a JSON number or a string holding `[+-]digits[.digits]`,
//! optionally with an exponent (`1e2`, `1.5E-3`); surrounding spaces of a string
//! are ignored. The canonical text is rust_decimal's: plain notation, no `+`, the
//! scale as written (`"0.30"` stays `0.30`, `1e2` becomes `100`, `-0` becomes `0`).
//! Numbers that do not fit a 96-bit decimal exactly are refused rather than rounded.

use std::str::FromStr;

use jiff::fmt::temporal::DateTimePrinter;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::{Number, Value};

/// Message for a value that is not a decimal.
pub(crate) const DECIMAL_MESSAGE: &str = "expected a decimal number";
/// Message for decimal text that a 96-bit decimal cannot hold exactly.
pub(crate) const DECIMAL_RANGE_MESSAGE: &str = "a decimal too large or too precise to keep exactly: at most 28 \
     decimal places and 29 significant digits (up to 79228162514264337593543950335)";
/// Message for a value that is not an RFC 3339 date-time with an offset.
pub(crate) const DATE_TIME_MESSAGE: &str = "expected an RFC 3339 date-time with an offset (Z or +hh:mm)";
/// Message for a value that is neither a date nor a date-time.
pub(crate) const DATE_MESSAGE: &str =
    "expected a date (YYYY-MM-DD) or an RFC 3339 date-time with an offset (Z or +hh:mm)";

/// Parses decimal text exactly; `None` for anything else (`1,5`, `NaN`, `1_000`, ...).
pub(crate) fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    if !is_decimal_syntax(text) {
        return None;
    }
    let mut value = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()?
    } else {
        Decimal::from_str_exact(text).ok()?
    };
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    Some(value)
}

/// Why `value` is no decimal: not written as one at all, or out of range.
pub(crate) fn decimal_message(value: &Value) -> &'static str {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.trim().to_string(),
        _ => return DECIMAL_MESSAGE,
    };
    if is_decimal_syntax(&text) {
        DECIMAL_RANGE_MESSAGE
    } else {
        DECIMAL_MESSAGE
    }
}

/// `[+-]? (digits [. digits] | . digits) ([eE] [+-]? digits)?`; rust_decimal alone
/// would also take `1_000`, which no client means as a number.
fn is_decimal_syntax(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty()) && !(mantissa.ends_with('.'));
    let exponent_ok = exponent.is_none_or(|e| !e.is_empty() && digits(e));
    mantissa_ok && exponent_ok
}

/// The canonical form of a decimal value (a JSON number or a string), as a JSON number.
pub(crate) fn canonical_decimal(value: &Value) -> Option<Value> {
    let decimal = match value {
        Value::Number(number) => parse_decimal(&number.to_string())?,
        Value::String(text) => parse_decimal(text)?,
        _ => return None,
    };
    decimal_to_json(decimal)
}

/// A JSON number whose text is the decimal's canonical text.
pub(crate) fn decimal_to_json(decimal: Decimal) -> Option<Value> {
    serde_json::from_str::<Number>(&decimal.to_string()).ok().map(Value::Number)
}

/// Parses an RFC 3339 date-time that carries an offset; `None` without one.
pub(crate) fn parse_date_time(text: &str) -> Option<Timestamp> {
    // jiff refuses a Timestamp without an offset, as we do; it reads more
    // than RFC 3339 though, which the shape check keeps out.
    if !is_rfc3339_shape(text.as_bytes()) {
        return None;
    }
    text.parse::<Timestamp>().ok()
}

/// The shape RFC 3339 gives a date-time: `2024-05-01T10:00:00` (`t` or a
/// space for the `T`), an optional fraction, then `Z` or `+hh:mm` up to
/// 23:59. jiff also reads time zone annotations (`[Europe/Paris]`), offsets
/// up to 25 hours, minutes without seconds, and years of 6 digits.
fn is_rfc3339_shape(b: &[u8]) -> bool {
    let digits = |from: usize, to: usize| b.get(from..to).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let head = digits(0, 4) && at(4, b"-") && digits(5, 7) && at(7, b"-") && digits(8, 10);
    let time = at(10, b"Tt ") && digits(11, 13) && at(13, b":") && digits(14, 16) && at(16, b":") && digits(17, 19);
    if !(head && time) {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let count = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if count == 0 {
            return false;
        }
        rest = &fraction[count..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two =
                |hi: u8, lo: u8| (hi.is_ascii_digit() && lo.is_ascii_digit()).then(|| (hi - b'0') * 10 + (lo - b'0'));
            matches!((two(*h1, *h2), two(*m1, *m2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

/// The date-time in UTC (`Z`), keeping as many fractional digits as were written
/// (`10:00:00.500+02:00` -> `08:00:00.500Z`): the text stored for a `date-time`
/// field; `None` for anything but an RFC 3339 date-time with an offset.
pub fn canonical_date_time(text: &str) -> Option<String> {
    let timestamp = parse_date_time(text)?;
    let printer = DateTimePrinter::new().precision(fraction_digits(text));
    Some(printer.timestamp_to_string(&timestamp))
}

/// Number of digits after the seconds' decimal mark, if there is one.
fn fraction_digits(text: &str) -> Option<u8> {
    let time = &text[text.find(['T', 't', ' '])?..];
    let fraction = &time[time.find(['.', ','])? + 1..];
    let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
    u8::try_from(count.min(9)).ok()
}

/// A `YYYY-MM-DD` calendar date.
pub(crate) fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    shape && jiff::civil::Date::from_str(text).is_ok()
}

/// A date field's canonical text: the date as written, or a date-time in UTC.
pub(crate) fn canonical_date(text: &str) -> Option<String> {
    if is_date(text) {
        Some(text.to_owned())
    } else {
        canonical_date_time(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn canonical_decimal_text_round_trips(mantissa in any::<i64>(), scale in 0u32..12) {
            let text = Decimal::new(mantissa, scale).to_string();
            let from_string = canonical_decimal(&Value::String(text.clone()));
            let number: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(from_string.map(|v| v.to_string()), Some(text.clone()));
            prop_assert_eq!(canonical_decimal(&number).map(|v| v.to_string()), Some(text));
        }
    }

    #[test]
    fn decimal_text_keeps_the_scale_written() {
        let cases = [
            ("0.30", "0.30"),
            ("1.98", "1.98"),
            ("-12.5", "-12.5"),
            ("+7", "7"),
            (".5", "0.5"),
            ("-0.00", "0.00"),
            ("1e2", "100"),
            ("1.5E-3", "0.0015"),
            (" 42 ", "42"),
            ("79228162514264337593543950335", "79228162514264337593543950335"),
        ];
        for (text, canonical) in cases {
            let value = parse_decimal(text).map(|d| d.to_string());
            assert_eq!(value.as_deref(), Some(canonical), "{text}");
        }
    }

    #[test]
    fn non_decimals_are_refused() {
        for text in ["abc", "1,5", "NaN", "inf", "", ".", "5.", "1_000", "1e", "--1", "0x10"] {
            assert!(parse_decimal(text).is_none(), "{text}");
        }
        // More digits than a 96-bit decimal holds: refused, never rounded.
        assert!(parse_decimal("0.12345678901234567890123456789").is_none());
        assert!(parse_decimal("792281625142643375935439503350").is_none());
    }

    #[test]
    fn date_times_need_an_offset_and_end_in_utc() {
        let cases = [
            ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00Z"),
            ("2016-07-28T13:35:50Z", "2016-07-28T13:35:50Z"),
            ("2024-01-01T10:00:00.500-01:30", "2024-01-01T11:30:00.500Z"),
            ("2024-01-01T10:00:00.000Z", "2024-01-01T10:00:00.000Z"),
        ];
        for (text, canonical) in cases {
            assert_eq!(canonical_date_time(text).as_deref(), Some(canonical), "{text}");
        }
        for text in ["2024-01-01T10:00:00", "2024-01-01", "yesterday", "2024-13-01T00:00:00Z"] {
            assert!(canonical_date_time(text).is_none(), "{text}");
        }
        // What jiff reads but RFC 3339 does not have.
        let beyond = [
            "2030-05-05T10:00:00+24:00",
            "2030-05-05T10:00:00Z[Europe/Paris]",
            "2030-05-05T10:00:00+02:00[Europe/Paris]",
            "2030-05-05 10:00Z",
            "2030-05-05T10:00:00.Z",
            "2030-05-05T10:00:00,5Z",
            "+002030-05-05T10:00:00Z",
            "2030-05-05T10:00:00+0200",
        ];
        for text in beyond {
            assert!(canonical_date_time(text).is_none(), "{text}");
        }
        // What RFC 3339 allows in its other spellings.
        assert_eq!(canonical_date_time("2030-05-05t10:00:00z").as_deref(), Some("2030-05-05T10:00:00Z"));
        assert_eq!(canonical_date_time("2030-05-05 10:00:00-23:59").as_deref(), Some("2030-05-06T09:59:00Z"));
    }

    #[test]
    fn dates_are_kept_or_read_as_date_times() {
        assert_eq!(canonical_date("1962-02-18").as_deref(), Some("1962-02-18"));
        let chinook = canonical_date("1962-02-18T00:00:00Z");
        assert_eq!(chinook.as_deref(), Some("1962-02-18T00:00:00Z"));
        for text in ["1962-02-30", "18/02/1962", "1962-2-18", "1962-02-18T00:00:00"] {
            assert!(canonical_date(text).is_none(), "{text}");
        }
    }
}

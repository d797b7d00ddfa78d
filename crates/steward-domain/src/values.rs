//! Parsed values: "parse, don't validate". Each type can only hold a valid,
//! normalised value, and error messages never echo the input (it may be
//! personal data).

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Why a value was refused. The message never contains the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub &'static str);

/// An e-mail address, trimmed, with the domain lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ValueError("must not be empty"));
        }
        if s.len() > 254 {
            return Err(ValueError("is longer than 254 characters"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or(ValueError("is not a valid e-mail address"))?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.len() >= 3
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(ValueError("is not a valid e-mail address"));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for exact-match lookups and uniqueness: fully lower-cased.
    #[must_use]
    pub fn lookup_key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> Self {
        e.0
    }
}
impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A telephone number in E.164 form (`+` and 8 to 15 digits).
///
/// Input must be international: a leading `+` or `00`. Spaces, dots, dashes,
/// slashes and parentheses are separators and are dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = input.trim();
        let rest = if let Some(r) = s.strip_prefix('+') {
            r
        } else if let Some(r) = s.strip_prefix("00") {
            r
        } else {
            return Err(ValueError(
                "must be an international number starting with + and the country code",
            ));
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '/' | '(' | ')' | '\u{a0}' => {}
                _ => return Err(ValueError("contains characters that are not digits")),
            }
        }
        if digits.starts_with('0') {
            return Err(ValueError("has a country code starting with 0"));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(ValueError("must have between 8 and 15 digits"));
        }
        Ok(Self(format!("+{digits}")))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.0
    }
}

/// ISO 3166-1 alpha-2 officially assigned codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// A country as an ISO 3166-1 alpha-2 code, upper-cased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Every code [`Self::parse`] accepts (upper case).
    pub fn all() -> impl Iterator<Item = &'static str> {
        COUNTRIES.split(' ')
    }

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = input.trim().to_ascii_uppercase();
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) && COUNTRIES.split(' ').any(|c| c == s) {
            let b = s.as_bytes();
            Ok(Self([b[0], b[1]]))
        } else {
            Err(ValueError("is not an ISO 3166-1 alpha-2 country code"))
        }
    }
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// ISO 4217 active currency codes.
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL";

/// A currency as an ISO 4217 alphabetic code, upper-cased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    /// Every code [`Self::parse`] accepts (upper case), and null (for an
    /// optional currency's schema).
    #[must_use]
    pub fn all_or_null() -> Vec<serde_json::Value> {
        CURRENCIES
            .split(' ')
            .map(serde_json::Value::from)
            .chain([serde_json::Value::Null])
            .collect()
    }

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = input.trim().to_ascii_uppercase();
        if s.len() == 3 && CURRENCIES.split(' ').any(|c| c == s) {
            let b = s.as_bytes();
            Ok(Self([b[0], b[1], b[2]]))
        } else {
            Err(ValueError("is not an ISO 4217 currency code"))
        }
    }
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

/// A calendar date written YYYY-MM-DD.
pub fn parse_date(input: &str) -> Result<NaiveDate, ValueError> {
    let s = input.trim();
    if s.len() != 10 {
        return Err(ValueError("must be a date written YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ValueError("must be a date written YYYY-MM-DD"))
}

/// A money amount in minor units (hundredths), parsed from a decimal with at
/// most two fraction digits. Kept as an integer so sums are exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount(i64);

impl Amount {
    pub const MAX_MINOR: i64 = 999_999_999_999_999;

    pub fn parse(input: &str) -> Result<Self, ValueError> {
        const MSG: &str = "must be a non-negative amount with at most two decimals";
        let s = input.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty()
            || int.len() > 13
            || frac.len() > 2
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (s.contains('.') && frac.is_empty())
        {
            return Err(ValueError(MSG));
        }
        let int: i64 = int.parse().map_err(|_| ValueError(MSG))?;
        let mut f: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| ValueError(MSG))?
        };
        if frac.len() == 1 {
            f *= 10;
        }
        Ok(Self(int * 100 + f))
    }

    /// From a JSON number. Rejects negative, non-finite and over-precise values.
    pub fn from_json(n: &serde_json::Number) -> Result<Self, ValueError> {
        if let Some(i) = n.as_u64() {
            if i <= (Self::MAX_MINOR / 100) as u64 {
                return Ok(Self(i as i64 * 100));
            }
            return Err(ValueError("is too large"));
        }
        Self::parse(&n.to_string())
    }

    #[must_use]
    pub const fn from_minor(minor: i64) -> Self {
        Self(minor)
    }
    #[must_use]
    pub const fn minor(&self) -> i64 {
        self.0
    }

    /// As a JSON number: an integer when whole, else a decimal.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        if self.0 % 100 == 0 {
            serde_json::Value::from(self.0 / 100)
        } else {
            serde_json::Number::from_f64(self.0 as f64 / 100.0)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
    }
}

/// JSON Schema patterns (ECMA-262 and Python `re` read them alike) of the
/// text the validators accept, for the API description: prose that is not
/// blank and holds no control character but tab, CR and LF.
pub const PROSE_PATTERN: &str = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$";
/// One line that is not blank and holds no control character at all.
pub const LINE_PATTERN: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";
/// Like [`PROSE_PATTERN`], but blank is allowed (an optional text).
pub const PROSE_OR_BLANK_PATTERN: &str = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$";
/// Text with at least one character that is not white space.
pub const NOT_BLANK_PATTERN: &str = r"\S";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            EmailAddress::parse(" Ada@Example.COM ").map(|e| e.0),
            Ok("Ada@example.com".into())
        );
        assert_eq!(
            EmailAddress::parse("Ada@Example.COM").map(|e| e.lookup_key()),
            Ok("ada@example.com".into())
        );
        for bad in [
            "",
            "plain",
            "@x.com",
            "a@",
            "a@b",
            "a b@x.com",
            "a..b@x.com",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        let err = EmailAddress::parse("secret-person").unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn phones_normalise_to_e164() {
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958").map(|p| p.0),
            Ok("+442079460958".into())
        );
        assert_eq!(
            PhoneNumber::parse("0049 (30) 123-4567").map(|p| p.0),
            Ok("+49301234567".into())
        );
        for bad in [
            "020 7946 0958",
            "+12",
            "+1234567890123456",
            "+44 20 abc",
            "+0 123456789",
            "",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn countries_and_currencies() {
        assert_eq!(
            CountryCode::parse("de").map(|c| c.as_str().to_string()),
            Ok("DE".into())
        );
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("DEU").is_err());
        assert_eq!(
            CurrencyCode::parse("eur").map(|c| c.as_str().to_string()),
            Ok("EUR".into())
        );
        assert!(CurrencyCode::parse("EURO").is_err());
        assert!(CurrencyCode::parse("ABC").is_err());
    }

    #[test]
    fn dates() {
        assert!(parse_date("2024-02-29").is_ok());
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("29/02/2024").is_err());
        assert!(parse_date("2024-2-9").is_err());
    }

    #[test]
    fn amounts() {
        assert_eq!(Amount::parse("1200.5").map(|a| a.minor()), Ok(120_050));
        assert_eq!(Amount::parse("7").map(|a| a.minor()), Ok(700));
        assert_eq!(Amount::parse("7").map(|a| a.to_json()), Ok(serde_json::json!(7)));
        assert_eq!(Amount::parse("7.25").map(|a| a.to_json()), Ok(serde_json::json!(7.25)));
        for bad in ["-1", "1.234", "abc", "", "1.", ".5", "1e5"] {
            assert!(Amount::parse(bad).is_err(), "{bad}");
        }
    }
}

//! The part of SCIM's filter language (RFC 7644 §3.4.2.2) that Steward
//! answers: one attribute compared for equality with a string,
//! `userName eq "bjensen"`. Anything else is refused (`invalidFilter`)
//! rather than answered wrongly.

use super::ScimError;

/// `attribute eq "value"`, with the attribute name as written (matched
/// case-insensitively by the caller).
#[derive(Clone, PartialEq, Eq)]
pub struct EqFilter {
    pub attribute: String,
    pub value: String,
}

fn invalid() -> ScimError {
    ScimError::bad(
        "invalidFilter",
        "the filter is not supported: use one attribute, the operator eq and a quoted string",
    )
}

/// Parses `attr eq "value"`; `allowed` names the attributes that may be
/// filtered on (compared case-insensitively; a schema URN prefix is allowed).
pub fn parse(filter: &str, allowed: &[&str], schema: &str) -> Result<EqFilter, ScimError> {
    let s = filter.trim();
    let (attribute, rest) = s.split_once(char::is_whitespace).ok_or_else(invalid)?;
    let rest = rest.trim_start();
    let (op, value) = rest.split_once(char::is_whitespace).ok_or_else(invalid)?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(invalid());
    }
    let value: String = serde_json::from_str(value.trim()).map_err(|_| invalid())?;
    let bare = attribute
        .strip_prefix(schema)
        .and_then(|a| a.strip_prefix(':'))
        .unwrap_or(attribute);
    let known = allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(bare))
        .ok_or_else(invalid)?;
    Ok(EqFilter {
        attribute: (*known).to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ALLOWED: &[&str] = &["userName", "externalId"];

    fn ok(f: &str) -> (String, String) {
        let p = parse(f, ALLOWED, USER).unwrap_or_else(|_| panic!("{f} should parse"));
        (p.attribute, p.value)
    }

    #[test]
    fn equality_on_the_allowed_attributes() {
        assert_eq!(ok(r#"userName eq "bjensen""#), ("userName".into(), "bjensen".into()));
        assert_eq!(ok(r#"username EQ "b j""#), ("userName".into(), "b j".into()));
        assert_eq!(
            ok(r#"  externalId   eq   "a\"b"  "#),
            ("externalId".into(), "a\"b".into())
        );
        assert_eq!(
            ok(&format!(r#"{USER}:userName eq "x""#)),
            ("userName".into(), "x".into())
        );
    }

    #[test]
    fn everything_else_is_an_invalid_filter() {
        for f in [
            "",
            "userName",
            r#"userName ne "x""#,
            r#"userName sw "x""#,
            "userName pr",
            r#"emails eq "x""#,
            r#"userName eq "x" and active eq true"#,
            "userName eq x",
            "userName eq true",
            r#"(userName eq "x")"#,
            r#"emails[type eq "work"]"#,
        ] {
            let e = parse(f, ALLOWED, USER)
                .err()
                .unwrap_or_else(|| panic!("{f} should fail"));
            assert_eq!((e.status, e.scim_type), (400, Some("invalidFilter")), "{f}");
        }
    }
}

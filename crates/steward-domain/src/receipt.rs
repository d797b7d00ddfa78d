//! Consent receipts in the Kantara Initiative Consent Receipt format v1.1
//! (`KI-CR-v1.1.0`).
//!
//! [`build_receipt`] turns plain inputs into the receipt's JSON document.
//! This crate has no cryptography: the service signs the document (as a
//! compact JWS with the instance's receipt key, `steward_crypto::jws`).
//!
//! # Shape
//!
//! ```text
//! { version, jurisdiction, consentTimestamp, collectionMethod, consentReceiptID,
//!   publicKey?, language, piiPrincipalId,
//!   piiControllers: [{ piiController, contact, address: { streetAddress, addressCountry },
//!                      email, phone, piiControllerUrl? }],
//!   policyUrl,
//!   services: [{ service, purposes: [{ purpose, purposeCategory, consentType, piiCategory,
//!                                      primaryPurpose, termination, thirdPartyDisclosure,
//!                                      thirdPartyName? }] }],
//!   sensitive, spiCat }
//! ```
//!
//! One controller and one service per receipt. A purpose discloses to third
//! parties exactly when it names at least one (non-blank) third party; then
//! `thirdPartyDisclosure` is `true` and `thirdPartyName` lists the names
//! joined by `", "`. Otherwise `thirdPartyDisclosure` is `false` and there is
//! no `thirdPartyName` (the schema's `oneOf` would allow one, but it would
//! be misleading).
//!
//! The receipt is personal data about its principal only through
//! `piiPrincipalId`, which must be a pseudonymous id (the subject id), never
//! a name or an e-mail address.

use serde_json::Value;

/// The receipt format version, the receipt's `version` member.
pub const RECEIPT_VERSION: &str = "KI-CR-v1.1.0";

/// The PII controller named on the receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// Legal name (`piiController`).
    pub name: String,
    /// Contact person or office (`contact`).
    pub contact: String,
    /// `address.streetAddress`.
    pub street_address: String,
    /// ISO 3166-1 alpha-2 code (`address.addressCountry`).
    pub country: String,
    pub email: String,
    pub phone: String,
    /// `piiControllerUrl`, omitted when `None`.
    pub url: Option<String>,
}

/// One purpose the consent covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPurpose {
    /// Human-readable description (`purpose`).
    pub purpose: String,
    /// `purposeCategory`, e.g. `"6 - Marketing"`.
    pub purpose_category: Vec<String>,
    /// `consentType`, e.g. `"EXPLICIT"`.
    pub consent_type: String,
    /// `piiCategory`, e.g. `"2 - Contact"`.
    pub pii_category: Vec<String>,
    /// `primaryPurpose`.
    pub primary_purpose: bool,
    /// When the consent ends (`termination`), e.g. `"Withdrawal or 730 days"`.
    pub termination: String,
    /// Third parties the PII is disclosed to; blank names are ignored, and
    /// none means `thirdPartyDisclosure: false`.
    pub third_party_names: Vec<String>,
}

/// Everything a receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptInput {
    /// `consentReceiptID`: the consent record's id (a UUID string).
    pub receipt_id: String,
    pub jurisdiction: String,
    /// `consentTimestamp`, seconds since the Unix epoch. The schema requires
    /// it to be non-negative; a negative value yields an invalid receipt.
    pub consent_timestamp: i64,
    /// `collectionMethod`, e.g. `"api"` or `"web form"`.
    pub collection_method: String,
    /// `language`, e.g. `"en"`.
    pub language: String,
    /// `piiPrincipalId`: a pseudonymous subject id, never a name or e-mail.
    pub principal_id: String,
    pub controller: Controller,
    pub policy_url: String,
    /// `services[0].service`.
    pub service: String,
    pub purposes: Vec<ReceiptPurpose>,
    pub sensitive: bool,
    /// `spiCat`: the sensitive PII categories.
    pub spi_categories: Vec<String>,
    /// `publicKey`, omitted when `None`: identifies the key that signs the
    /// receipt (e.g. its JWK thumbprint).
    pub public_key: Option<String>,
}

/// A Kantara Consent Receipt v1.1 document, as [`build_receipt`] makes it:
/// a strict subset of the specification's schema (one controller, one
/// service; an address with a street and a country).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ConsentReceipt")]
pub struct ConsentReceipt {
    /// Always `KI-CR-v1.1.0`.
    #[schemars(extend("const" = "KI-CR-v1.1.0"))]
    pub version: String,
    pub jurisdiction: String,
    /// Seconds since the Unix epoch.
    #[schemars(range(min = 0))]
    pub consent_timestamp: i64,
    pub collection_method: String,
    #[serde(rename = "consentReceiptID")]
    pub consent_receipt_id: String,
    /// Identifies the key that signs the receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub language: String,
    /// The pseudonymous subject id, never a name or an e-mail address.
    pub pii_principal_id: String,
    pub pii_controllers: Vec<ReceiptController>,
    pub policy_url: String,
    pub services: Vec<ReceiptService>,
    pub sensitive: bool,
    pub spi_cat: Vec<String>,
}

/// `piiControllers[]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptController {
    pub pii_controller: String,
    pub contact: String,
    pub address: ReceiptAddress,
    pub email: String,
    pub phone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pii_controller_url: Option<String>,
}

/// `piiControllers[].address`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptAddress {
    pub street_address: String,
    /// ISO 3166-1 alpha-2.
    pub address_country: String,
}

/// `services[]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ReceiptService {
    pub service: String,
    pub purposes: Vec<ReceiptServicePurpose>,
}

/// `services[].purposes[]`: `thirdPartyName` exactly when
/// `thirdPartyDisclosure` is true.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptServicePurpose {
    pub purpose: String,
    pub purpose_category: Vec<String>,
    pub consent_type: String,
    pub pii_category: Vec<String>,
    pub primary_purpose: bool,
    pub termination: String,
    pub third_party_disclosure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub third_party_name: Option<String>,
}

fn controller_of(c: &Controller) -> ReceiptController {
    ReceiptController {
        pii_controller: c.name.clone(),
        contact: c.contact.clone(),
        address: ReceiptAddress {
            street_address: c.street_address.clone(),
            address_country: c.country.clone(),
        },
        email: c.email.clone(),
        phone: c.phone.clone(),
        pii_controller_url: c.url.clone(),
    }
}

fn purpose_of(p: &ReceiptPurpose) -> ReceiptServicePurpose {
    let names: Vec<&str> = p
        .third_party_names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .collect();
    ReceiptServicePurpose {
        purpose: p.purpose.clone(),
        purpose_category: p.purpose_category.clone(),
        consent_type: p.consent_type.clone(),
        pii_category: p.pii_category.clone(),
        primary_purpose: p.primary_purpose,
        termination: p.termination.clone(),
        third_party_disclosure: !names.is_empty(),
        third_party_name: (!names.is_empty()).then(|| names.join(", ")),
    }
}

/// The receipt for `input` (see the module docs for its shape).
#[must_use]
pub fn receipt_document(input: &ReceiptInput) -> ConsentReceipt {
    ConsentReceipt {
        version: RECEIPT_VERSION.into(),
        jurisdiction: input.jurisdiction.clone(),
        consent_timestamp: input.consent_timestamp,
        collection_method: input.collection_method.clone(),
        consent_receipt_id: input.receipt_id.clone(),
        public_key: input.public_key.clone(),
        language: input.language.clone(),
        pii_principal_id: input.principal_id.clone(),
        pii_controllers: vec![controller_of(&input.controller)],
        policy_url: input.policy_url.clone(),
        services: vec![ReceiptService {
            service: input.service.clone(),
            purposes: input.purposes.iter().map(purpose_of).collect(),
        }],
        sensitive: input.sensitive,
        spi_cat: input.spi_categories.clone(),
    }
}

/// The receipt document for `input` as JSON, members in sorted order (the
/// bytes the receipt's JWS signs).
#[must_use]
pub fn build_receipt(input: &ReceiptInput) -> Value {
    serde_json::to_value(receipt_document(input)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> ReceiptInput {
        ReceiptInput {
            receipt_id: "0190f0e2-7a6b-7c3d-8e9f-0a1b2c3d4e5f".into(),
            jurisdiction: "EU".into(),
            consent_timestamp: 1_700_000_000,
            collection_method: "web form".into(),
            language: "en".into(),
            principal_id: "b7d1c6de-5b8a-4a55-9c1e-3f2a9e0d4c11".into(),
            controller: Controller {
                name: "Example GmbH".into(),
                contact: "Data Protection Office".into(),
                street_address: "Hauptstr. 1, 10115 Berlin".into(),
                country: "DE".into(),
                email: "privacy@example.com".into(),
                phone: "+49 30 1234567".into(),
                url: None,
            },
            policy_url: "https://example.com/privacy".into(),
            service: "Steward CRM".into(),
            purposes: vec![ReceiptPurpose {
                purpose: "Newsletter".into(),
                purpose_category: vec!["6 - Marketing".into()],
                consent_type: "EXPLICIT".into(),
                pii_category: vec!["2 - Contact".into()],
                primary_purpose: true,
                termination: "Withdrawal".into(),
                third_party_names: vec![],
            }],
            sensitive: false,
            spi_categories: vec![],
            public_key: None,
        }
    }

    #[test]
    fn shape() {
        let r = build_receipt(&input());
        assert_eq!(r["version"], RECEIPT_VERSION);
        assert_eq!(r["consentTimestamp"], 1_700_000_000);
        assert!(r.get("publicKey").is_none());
        assert!(r["piiControllers"][0].get("piiControllerUrl").is_none());
        assert_eq!(r["piiControllers"][0]["address"]["addressCountry"], "DE");
        let p = &r["services"][0]["purposes"][0];
        assert_eq!(p["thirdPartyDisclosure"], false);
        assert!(p.get("thirdPartyName").is_none());
        assert_eq!(r["spiCat"], json!([]));
    }

    #[test]
    fn third_parties_are_joined_and_blanks_ignored() {
        let mut i = input();
        i.purposes[0].third_party_names = vec!["Mailer Ltd".into(), "  ".into(), " Analytics Inc ".into()];
        let r = build_receipt(&i);
        let p = &r["services"][0]["purposes"][0];
        assert_eq!(p["thirdPartyDisclosure"], true);
        assert_eq!(p["thirdPartyName"], "Mailer Ltd, Analytics Inc");

        i.purposes[0].third_party_names = vec![String::new(), " ".into()];
        let p = build_receipt(&i)["services"][0]["purposes"][0].clone();
        assert_eq!(p["thirdPartyDisclosure"], false);
        assert!(p.get("thirdPartyName").is_none());
    }

    #[test]
    fn optional_members() {
        let mut i = input();
        i.public_key = Some("kid-123".into());
        i.controller.url = Some("https://example.com".into());
        let r = build_receipt(&i);
        assert_eq!(r["publicKey"], "kid-123");
        assert_eq!(r["piiControllers"][0]["piiControllerUrl"], "https://example.com");
    }
}

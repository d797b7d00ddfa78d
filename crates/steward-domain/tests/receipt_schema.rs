#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
//! Validates consent receipts from `steward_domain::receipt::build_receipt`,
//! and the example shipped with the standard, against the Kantara Consent
//! Receipt v1.1 JSON schema (draft-04), copied into the repository's
//! `standards/` directory, using the `boon` validator.

use std::path::PathBuf;

use serde_json::{json, Value};
use steward_domain::receipt::{build_receipt, Controller, ReceiptInput, ReceiptPurpose, RECEIPT_VERSION};

const SCHEMA_FILE: &str = "kantara-consent-receipt-v1.1.schema.json";
const EXAMPLE_FILE: &str = "kantara-consent-receipt-v1.1.example.json";

fn standards_dir() -> PathBuf {
    // crates/steward-domain -> the repository root's standards/.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../standards")
}

fn read_json(name: &str) -> Value {
    let path = standards_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The compiled schema (compilation also checks it against the draft-04
/// meta-schema).
struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new() -> Self {
        let schema = read_json(SCHEMA_FILE);
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#");
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V4);
        let loc = "urn:steward:kantara-consent-receipt-v1.1";
        compiler.add_resource(loc, schema).expect("add the schema");
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(loc, &mut schemas)
            .unwrap_or_else(|e| panic!("the schema does not compile: {e:#}"));
        Self { schemas, index }
    }

    fn check(&self, receipt: &Value) -> Result<(), String> {
        self.schemas.validate(receipt, self.index).map_err(|e| format!("{e:#}"))
    }

    #[track_caller]
    fn assert_valid(&self, receipt: &Value) {
        if let Err(e) = self.check(receipt) {
            panic!("receipt does not validate: {e}\n{receipt:#}");
        }
    }

    #[track_caller]
    fn assert_invalid(&self, receipt: &Value, why: &str) -> String {
        match self.check(receipt) {
            Ok(()) => panic!("receipt validates although {why}:\n{receipt:#}"),
            Err(e) => {
                eprintln!("rejected as expected ({why}): {e}");
                e
            }
        }
    }
}

fn purpose(name: &str, third_parties: &[&str]) -> ReceiptPurpose {
    ReceiptPurpose {
        purpose: format!("{name}: processing as described in the privacy notice"),
        purpose_category: vec!["6 - Marketing".into()],
        consent_type: "EXPLICIT".into(),
        pii_category: vec!["1 - Biographical".into(), "2 - Contact".into()],
        primary_purpose: false,
        termination: "Withdrawal of consent, or 730 days".into(),
        third_party_names: third_parties.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn base_input() -> ReceiptInput {
    ReceiptInput {
        receipt_id: "0190f0e2-7a6b-7c3d-8e9f-0a1b2c3d4e5f".into(),
        jurisdiction: "EU".into(),
        consent_timestamp: 1_735_689_600,
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
        policy_url: "https://example.com/privacy/v3".into(),
        service: "Steward CRM".into(),
        purposes: vec![purpose("Newsletter", &[])],
        sensitive: false,
        spi_categories: vec![],
        public_key: None,
    }
}

/// Named variants covering the optional members and both branches of the
/// third-party `oneOf`.
fn variants() -> Vec<(&'static str, ReceiptInput)> {
    let mut out = vec![("minimal, no third parties", base_input())];

    let mut i = base_input();
    i.purposes = vec![purpose("Newsletter", &["Mailer Ltd"])];
    out.push(("one third party", i));

    let mut i = base_input();
    i.purposes = vec![
        {
            let mut p = purpose("Account", &[]);
            p.primary_purpose = true;
            p.purpose_category = vec!["2 - Contracted Service".into()];
            p.consent_type = "EXPLICIT".into();
            p
        },
        purpose("Newsletter", &["Mailer Ltd", "Analytics, Inc."]),
        purpose("Events", &[]),
    ];
    out.push(("several purposes, several third parties", i));

    let mut i = base_input();
    i.sensitive = true;
    i.spi_categories = vec!["3 - Health".into(), "8 - Religious".into()];
    i.purposes[0].pii_category.push("3 - Health".into());
    out.push(("sensitive", i));

    let mut i = base_input();
    i.sensitive = true;
    i.spi_categories = vec!["3 - Health".into()];
    i.purposes = vec![purpose("Care", &["Lab Partner AG"])];
    i.public_key = Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k".into());
    i.controller.url = Some("https://example.com".into());
    i.collection_method = "api".into();
    out.push(("sensitive, third party, public key, controller URL", i));

    let mut i = base_input();
    i.purposes = vec![];
    i.consent_timestamp = 0;
    out.push(("no purposes, epoch timestamp", i));

    out
}

#[test]
fn the_shipped_example_validates() {
    let v = Validator::new();
    let example = read_json(EXAMPLE_FILE);
    v.assert_valid(&example);
    assert_eq!(example["version"], RECEIPT_VERSION);
    // Note: the schema's oneOf does not forbid a thirdPartyName beside
    // "thirdPartyDisclosure": false (no additionalProperties), and the
    // example's third purpose has one; build_receipt never emits that.
    let third = &example["services"][0]["purposes"][2];
    assert_eq!(third["thirdPartyDisclosure"], false);
    assert!(third.get("thirdPartyName").is_some());
}

#[test]
fn generated_receipts_validate() {
    let v = Validator::new();
    for (name, input) in variants() {
        let receipt = build_receipt(&input);
        if let Err(e) = v.check(&receipt) {
            panic!("variant '{name}' does not validate: {e}\n{receipt:#}");
        }
    }
}

#[test]
fn generated_receipts_say_what_the_input_says() {
    let all = variants();
    let (_, input) = &all[4];
    let r = build_receipt(input);
    assert_eq!(r["version"], "KI-CR-v1.1.0");
    assert_eq!(r["jurisdiction"], "EU");
    assert_eq!(r["consentTimestamp"], 1_735_689_600);
    assert_eq!(r["collectionMethod"], "api");
    assert_eq!(r["consentReceiptID"], input.receipt_id.as_str());
    assert_eq!(r["publicKey"], "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_eq!(r["language"], "en");
    assert_eq!(r["piiPrincipalId"], input.principal_id.as_str());
    assert_eq!(
        r["piiControllers"],
        json!([{
            "piiController": "Example GmbH",
            "contact": "Data Protection Office",
            "address": { "streetAddress": "Hauptstr. 1, 10115 Berlin", "addressCountry": "DE" },
            "email": "privacy@example.com",
            "phone": "+49 30 1234567",
            "piiControllerUrl": "https://example.com"
        }])
    );
    assert_eq!(r["policyUrl"], "https://example.com/privacy/v3");
    assert_eq!(
        r["services"],
        json!([{
            "service": "Steward CRM",
            "purposes": [{
                "purpose": "Care: processing as described in the privacy notice",
                "purposeCategory": ["6 - Marketing"],
                "consentType": "EXPLICIT",
                "piiCategory": ["1 - Biographical", "2 - Contact"],
                "primaryPurpose": false,
                "termination": "Withdrawal of consent, or 730 days",
                "thirdPartyDisclosure": true,
                "thirdPartyName": "Lab Partner AG"
            }]
        }])
    );
    assert_eq!(r["sensitive"], true);
    assert_eq!(r["spiCat"], json!(["3 - Health"]));

    let (_, several) = &all[2];
    let purposes = &build_receipt(several)["services"][0]["purposes"];
    assert_eq!(purposes[0]["thirdPartyDisclosure"], false);
    assert!(purposes[0].get("thirdPartyName").is_none());
    assert_eq!(purposes[1]["thirdPartyName"], "Mailer Ltd, Analytics, Inc.");
    assert!(purposes[2].get("thirdPartyName").is_none());
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("a JSON object").keys().cloned().collect();
    k.sort();
    k
}

fn schema_property_names(schema: &Value) -> Vec<String> {
    keys(&schema["properties"])
}

/// The schema does not forbid unknown members, so a misspelt key (say
/// `consentReceiptId`) would still validate; check every member name we emit
/// is one the schema declares.
#[test]
fn every_member_name_is_declared_by_the_schema() {
    let schema = read_json(SCHEMA_FILE);
    let top = schema_property_names(&schema);
    let controller = schema_property_names(&schema["properties"]["piiControllers"]["items"]);
    let service = schema_property_names(&schema["properties"]["services"]["items"]);
    let purpose_schema = &schema["properties"]["services"]["items"]["properties"]["purposes"]["items"];
    let mut purpose = schema_property_names(purpose_schema);
    for branch in purpose_schema["oneOf"].as_array().unwrap() {
        purpose.extend(schema_property_names(branch));
    }
    // address is only `"type": "object"` in the schema; its members are the
    // standard's (and the shipped example's).
    let example = read_json(EXAMPLE_FILE);
    let address = keys(&example["piiControllers"][0]["address"]);

    for (name, input) in variants() {
        let r = build_receipt(&input);
        let check = |what: &str, v: &Value, allowed: &[String]| {
            for k in keys(v) {
                assert!(
                    allowed.contains(&k),
                    "variant '{name}': {what} member '{k}' is not in the schema"
                );
            }
        };
        check("receipt", &r, &top);
        for c in r["piiControllers"].as_array().unwrap() {
            check("controller", c, &controller);
            check("address", &c["address"], &address);
        }
        for s in r["services"].as_array().unwrap() {
            check("service", s, &service);
            for p in s["purposes"].as_array().unwrap() {
                check("purpose", p, &purpose);
            }
        }
    }
}

#[test]
fn disclosure_without_a_third_party_name_fails() {
    let v = Validator::new();
    let mut input = base_input();
    input.purposes = vec![purpose("Newsletter", &["Mailer Ltd"])];
    let mut r = build_receipt(&input);
    v.assert_valid(&r);
    r["services"][0]["purposes"][0]
        .as_object_mut()
        .unwrap()
        .remove("thirdPartyName");
    let e = v.assert_invalid(&r, "thirdPartyDisclosure is true without thirdPartyName");
    assert!(
        e.contains("oneOf") && e.contains("missing properties 'thirdPartyName'"),
        "{e}"
    );

    // Also from the other side: a non-disclosing purpose flipped to true.
    let mut r = build_receipt(&base_input());
    r["services"][0]["purposes"][0]["thirdPartyDisclosure"] = json!(true);
    v.assert_invalid(&r, "thirdPartyDisclosure is true without thirdPartyName");

    // And from the example.
    let mut example = read_json(EXAMPLE_FILE);
    example["services"][0]["purposes"][0]
        .as_object_mut()
        .unwrap()
        .remove("thirdPartyName");
    v.assert_invalid(&example, "the example's first purpose lost its thirdPartyName");
}

#[test]
fn a_missing_required_member_fails() {
    let v = Validator::new();
    let schema = read_json(SCHEMA_FILE);
    let mut input = base_input();
    input.purposes = vec![purpose("Newsletter", &["Mailer Ltd"])];
    let receipt = build_receipt(&input);
    v.assert_valid(&receipt);

    let required = schema["required"].as_array().unwrap();
    assert!(required.len() >= 10);
    for name in required {
        let name = name.as_str().unwrap();
        let mut r = receipt.clone();
        assert!(
            r.as_object_mut().unwrap().remove(name).is_some(),
            "we emit required '{name}'"
        );
        let e = v.assert_invalid(&r, &format!("'{name}' is missing"));
        assert!(e.contains(&format!("missing properties '{name}'")), "{e}");
    }

    type Remove = fn(&mut Value) -> Option<Value>;
    let nested: [(&str, Remove); 5] = [
        ("controller email", |r| {
            r["piiControllers"][0].as_object_mut()?.remove("email")
        }),
        ("controller address", |r| {
            r["piiControllers"][0].as_object_mut()?.remove("address")
        }),
        ("service purposes", |r| {
            r["services"][0].as_object_mut()?.remove("purposes")
        }),
        ("purpose consentType", |r| {
            r["services"][0]["purposes"][0].as_object_mut()?.remove("consentType")
        }),
        ("purpose thirdPartyDisclosure", |r| {
            r["services"][0]["purposes"][0]
                .as_object_mut()?
                .remove("thirdPartyDisclosure")
        }),
    ];
    for (what, remove) in nested {
        let mut r = receipt.clone();
        assert!(remove(&mut r).is_some(), "{what} is emitted");
        v.assert_invalid(&r, &format!("{what} is missing"));
    }
}

#[test]
fn wrong_types_and_ranges_fail() {
    let v = Validator::new();
    let receipt = build_receipt(&base_input());
    let cases: [(&str, Value); 6] = [
        ("consentTimestamp", json!(-1)),
        ("consentTimestamp", json!("1735689600")),
        ("consentTimestamp", json!(1.5)),
        ("sensitive", json!("false")),
        ("spiCat", json!("3 - Health")),
        ("piiControllers", json!({})),
    ];
    for (name, value) in cases {
        let mut r = receipt.clone();
        r[name] = value.clone();
        v.assert_invalid(&r, &format!("{name} is {value}"));
    }
    // A negative input timestamp is passed through and caught here.
    let mut input = base_input();
    input.consent_timestamp = -1;
    v.assert_invalid(&build_receipt(&input), "consentTimestamp is negative");
}

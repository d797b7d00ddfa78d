//! `steward contact import` and `steward contact export`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{assert_contains_none, mode, Output, Steward};

/// A data dir with a sales user `sam`.
fn with_sales_user() -> Steward {
    let s = Steward::initialised();
    s.create_user("sam", "sales");
    s
}

fn import(s: &Steward, csv: &[u8], extra: &[&str]) -> Output {
    let file = s.path("import.csv");
    std::fs::write(&file, csv).unwrap();
    let mut args = vec!["contact".to_string(), "import".into(), file.display().to_string()];
    args.extend(extra.iter().map(ToString::to_string));
    s.run(args)
}

fn export_json(s: &Steward, user: &str) -> Vec<Value> {
    let out = s.run(["contact", "export", "--as", user, "--format", "json"]);
    out.ok();
    let v: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("the JSON export parses ({e}):\n{}", out.stdout));
    v.as_array().expect("the JSON export is an array").clone()
}

fn field<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c.get(name).and_then(Value::as_str)
}

fn emails(contacts: &[Value]) -> BTreeSet<String> {
    contacts
        .iter()
        .map(|c| field(c, "email").unwrap_or("<none>").to_string())
        .collect()
}

/// `line N: reason` lines on stderr, as (N, reason).
fn line_reports(stderr: &str) -> Vec<(u64, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("line ")?;
            let (n, reason) = rest.split_once(": ")?;
            Some((n.parse().ok()?, reason.to_string()))
        })
        .collect()
}

/// Values in bad rows that must never show up in messages or the database.
const BAD_VALUES: &[&str] = &[
    "bob-at-nowhere",
    "Bobby",
    "call-me-maybe",
    "Cidney",
    "Secret Street",
    "Deedee",
    "Evelyn",
    "Adele",
    "Copycat",
    "zed@example.com",
];

fn mixed_csv() -> Vec<u8> {
    let mut csv = Vec::new();
    csv.extend_from_slice(b"given_name,family_name,email,phone,country,street\n"); // line 1
    csv.extend_from_slice(b"Ada,Lovelace,ada@example.com,+44 20 7946 0958,GB,\n"); // 2: good
    csv.extend_from_slice(b"Bobby,Bad,bob-at-nowhere,,,\n"); // 3: invalid e-mail
    csv.extend_from_slice(b"Cidney,Phone,cid@example.com,call-me-maybe,,\n"); // 4: invalid phone
    csv.extend_from_slice(b"Deedee,Street,dee@example.com,,,Secret Street 1\n"); // 5: street not needed for sales
    csv.extend_from_slice(b"Evelyn,Short,eve@example.com\n"); // 6: wrong column count
    csv.extend_from_slice(b"\xff\xfeZed,Bytes,zed@example.com,,,\n"); // 7: invalid UTF-8
    csv.extend_from_slice(b"Adele,Copycat,ada@example.com,,,\n"); // 8: duplicate e-mail
    csv.extend_from_slice(b"Fay,Good,fay@example.com,+49 30 1234567,DE,\n"); // 9: good
    csv.extend_from_slice(b"Gus,\"Quoted, Name\",gus@example.com,,,\n"); // 10: good
    csv
}

#[test]
fn import_reports_bad_rows_by_line_and_imports_the_rest() {
    let s = with_sales_user();
    let out = import(&s, &mixed_csv(), &["--as", "sam", "--purposes", "sales"]);
    out.expect_code(1);

    let reports = line_reports(&out.stderr);
    let lines: Vec<u64> = reports.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "refused rows by line:\n{}", out.stderr);
    let expect = [
        (3, "email"),
        (4, "phone"),
        (5, "street"),
        (6, "column"),
        (7, "UTF-8"),
        (8, "email"),
    ];
    for ((n, reason), (en, word)) in reports.iter().zip(expect) {
        assert_eq!(*n, en);
        assert!(reason.contains(word), "line {n}'s reason mentions {word}: {reason}");
    }
    assert!(
        reports[5].1.contains("already"),
        "line 8 is refused as a duplicate: {}",
        reports[5].1
    );
    assert!(
        out.stdout.contains("Imported 3 "),
        "the summary counts the imported rows: {}",
        out.stdout
    );
    assert_contains_none("import stderr", &out.stderr, BAD_VALUES);
    assert_contains_none("import stderr", &out.stderr, &["ada@example.com", "Lovelace", "+44"]);

    // The export holds exactly the good rows, unchanged by the duplicate.
    let contacts = export_json(&s, "sam");
    assert_eq!(
        emails(&contacts),
        ["ada@example.com", "fay@example.com", "gus@example.com"]
            .map(String::from)
            .into(),
        "{contacts:#?}"
    );
    let ada = contacts
        .iter()
        .find(|c| field(c, "email") == Some("ada@example.com"))
        .unwrap();
    assert_eq!(field(ada, "given_name"), Some("Ada"));
    assert_eq!(field(ada, "family_name"), Some("Lovelace"));
    assert_eq!(
        field(ada, "phone"),
        Some("+442079460958"),
        "phones are stored normalised"
    );
    assert_eq!(field(ada, "country"), Some("GB"));
    assert_eq!(ada["purposes"], serde_json::json!(["sales"]));
    let gus = contacts
        .iter()
        .find(|c| field(c, "email") == Some("gus@example.com"))
        .unwrap();
    assert_eq!(field(gus, "family_name"), Some("Quoted, Name"));
    for c in &contacts {
        assert!(
            c.get("id").and_then(Value::as_str).is_some_and(|id| !id.is_empty()),
            "every contact has an id: {c}"
        );
        assert!(
            c.get("street").is_none(),
            "no street is stored under purpose sales: {c}"
        );
    }
    assert_contains_none("the export", &serde_json::to_string(&contacts).unwrap(), BAD_VALUES);
}

#[test]
fn export_formats_and_private_output_file() {
    let s = with_sales_user();
    import(&s, &mixed_csv(), &["--as", "sam"]).expect_code(1);
    let json = s.run(["contact", "export", "--as", "sam", "--format", "json"]);
    json.ok();

    // CSV (the default format): a header and one line per contact.
    for args in [
        &["contact", "export", "--as", "sam", "--format", "csv"][..],
        &["contact", "export", "--as", "sam"][..],
    ] {
        let out = s.run(args);
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 4, "a header and three contacts:\n{}", out.stdout);
        let header: Vec<&str> = lines[0].split(',').collect();
        for col in ["id", "given_name", "family_name", "email", "phone", "country"] {
            assert!(header.contains(&col), "the CSV header has {col}: {}", lines[0]);
        }
        assert!(!header.contains(&"street"), "sales does not need street: {}", lines[0]);
        assert!(
            out.stdout.contains("\"Quoted, Name\""),
            "CSV values are quoted where needed:\n{}",
            out.stdout
        );
        assert_contains_none("the CSV export", &out.stdout, BAD_VALUES);
    }

    // --output: the same data, in a new file only its owner can read.
    let file = s.path("export.json");
    let out = s.run([
        "contact",
        "export",
        "--as",
        "sam",
        "--format",
        "json",
        "--output",
        file.to_str().unwrap(),
    ]);
    out.ok();
    assert!(
        out.stdout.is_empty(),
        "with --output nothing goes to stdout: {}",
        out.stdout
    );
    assert_eq!(mode(&file), 0o600, "the export file has mode 0600");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        json.stdout,
        "the file holds what stdout would"
    );

    // An existing, readable file is made private before personal data goes in.
    let existing = s.path("existing.csv");
    std::fs::write(&existing, "old").unwrap();
    std::fs::set_permissions(&existing, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    s.run(["contact", "export", "--as", "sam", "-o", existing.to_str().unwrap()])
        .ok();
    assert_eq!(mode(&existing), 0o600, "an overwritten export file has mode 0600");
    assert_eq!(std::fs::read_to_string(&existing).unwrap().lines().count(), 4);

    // An export that is refused leaves no file behind.
    s.create_user("ann", "admin");
    let refused = s.path("refused.csv");
    let out = s.run(["contact", "export", "--as", "ann", "-o", refused.to_str().unwrap()]);
    out.refused();
    assert!(!refused.exists(), "a refused export writes no file");

    s.run(["contact", "export", "--as", "sam", "--format", "xml"])
        .expect_code(2);
    s.run(["contact", "export", "--as", "nobody"]).refused();
}

#[test]
fn purposes_column_sets_collection_purposes_per_row() {
    let s = with_sales_user();
    s.create_user("sue", "support");
    let csv = b"given_name,email,street,purposes\n\
        Hal,hal@example.com,Elm Street 5,customer_service;sales\n\
        Ivy,ivy@example.com,Oak Street 6,sales\n\
        Jo,jo@example.com,,sales\n\
        Kim,kim@example.com,,no_such_purpose\n";
    let out = import(&s, csv, &["--as", "sam"]);
    out.expect_code(1);
    let reports = line_reports(&out.stderr);
    assert_eq!(
        reports.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![3, 5],
        "{}",
        out.stderr
    );
    assert!(reports[0].1.contains("street"), "{}", reports[0].1);
    assert!(reports[1].1.contains("purposes"), "{}", reports[1].1);
    assert!(out.stdout.contains("Imported 2 "), "{}", out.stdout);
    assert_contains_none("import stderr", &out.stderr, &["Oak Street", "ivy@", "kim@"]);

    // Support reads for customer_service: only Hal was collected for it, street included.
    let support = export_json(&s, "sue");
    assert_eq!(emails(&support), BTreeSet::from(["hal@example.com".to_string()]));
    assert_eq!(field(&support[0], "street"), Some("Elm Street 5"));
    assert_eq!(support[0]["purposes"], serde_json::json!(["customer_service", "sales"]));

    // Sales sees both, and never the street, which sales does not need.
    let sales = export_json(&s, "sam");
    assert_eq!(
        emails(&sales),
        BTreeSet::from(["hal@example.com".to_string(), "jo@example.com".to_string()])
    );
    assert!(sales.iter().all(|c| c.get("street").is_none()), "{sales:#?}");
}

#[test]
fn duplicates_within_a_file_refuse_the_later_row() {
    // Rows are imported concurrently; a duplicate must still be reported on
    // the later line, every time.
    let s = with_sales_user();
    let mut csv = String::from("given_name,email\n");
    for i in 0..40 {
        csv.push_str(&format!("First{i},p{i}@example.com\nSecond{i},p{i}@example.com\n"));
    }
    let out = import(&s, csv.as_bytes(), &["--as", "sam"]);
    out.expect_code(1);
    let refused: Vec<u64> = line_reports(&out.stderr).into_iter().map(|(n, _)| n).collect();
    let expected: Vec<u64> = (0..40).map(|i| 3 + 2 * i).collect();
    assert_eq!(
        refused, expected,
        "the second row of each pair is the duplicate:\n{}",
        out.stderr
    );
    let contacts = export_json(&s, "sam");
    assert_eq!(contacts.len(), 40);
    assert!(
        contacts
            .iter()
            .all(|c| field(c, "given_name").is_some_and(|n| n.starts_with("First"))),
        "{contacts:#?}"
    );
}

#[test]
fn a_clean_import_exits_0_and_a_repeat_refuses_every_row() {
    let s = with_sales_user();
    let csv = b"given_name,family_name,email\nAda,Lovelace,ada@example.com\nFay,Good,fay@example.com\n";
    let out = import(&s, csv, &["--as", "sam"]);
    out.ok();
    assert!(out.stdout.contains("Imported 2 "), "{}", out.stdout);
    assert!(line_reports(&out.stderr).is_empty(), "{}", out.stderr);

    let out = import(&s, csv, &["--as", "sam"]);
    out.expect_code(1);
    assert_eq!(
        line_reports(&out.stderr).iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(out.stdout.contains("Imported 0 "), "{}", out.stdout);
    assert_eq!(export_json(&s, "sam").len(), 2);
}

#[test]
fn header_problems_refuse_the_whole_file() {
    let s = with_sales_user();

    let out = import(&s, b"given_name,emial\nAda,ada@example.com\n", &["--as", "sam"]);
    let err = out.refused();
    assert!(err.contains("emial"), "the error names the unknown column: {err}");
    assert!(!err.contains("ada@example.com"));

    // A file without a header row: its first line is personal data, never echoed.
    let out = import(&s, b"Ada,Lovelace,ada@example.com,+44 20 7946 0958\n", &["--as", "sam"]);
    let err = out.refused();
    assert!(err.contains("header"), "{err}");
    assert_contains_none("the error", &err, &["Ada", "Lovelace", "ada@example.com", "+44"]);

    let err = import(&s, b"email,email\nada@example.com,ada@example.com\n", &["--as", "sam"]).refused();
    assert!(err.contains("email"), "{err}");

    let err = import(&s, b"", &["--as", "sam"]).refused();
    assert!(err.contains("empty"), "{err}");

    let err = import(&s, b"given_name\nAda\n", &["--as", "sam", "--purposes", "bogus"]).refused();
    assert!(err.contains("bogus"), "{err}");

    let err = import(&s, b"given_name\nAda\n", &["--as", "nobody"]).refused();
    assert!(err.contains("nobody"), "{err}");

    let err = s
        .run([
            "contact",
            "import",
            s.path("missing.csv").to_str().unwrap(),
            "--as",
            "sam",
        ])
        .refused();
    assert!(err.contains("missing.csv"), "{err}");

    s.run(["contact", "import", "--as", "sam"]).expect_code(2);
    s.run(["contact", "import", "x.csv"]).expect_code(2);

    assert!(
        export_json(&s, "sam").is_empty(),
        "nothing was imported from refused files"
    );
}

#[test]
fn an_export_can_be_imported_into_another_steward() {
    let a = with_sales_user();
    import(&a, b"given_name,family_name,email,phone\nAda,Lovelace,ada@example.com,+44 20 7946 0958\nAlan,Turing,alan@example.com,\n", &["--as", "sam"]).ok();
    let exported = a.run(["contact", "export", "--as", "sam"]);
    exported.ok();

    let b = with_sales_user();
    let out = import(&b, exported.stdout.as_bytes(), &["--as", "sam"]);
    out.ok();
    let contacts = export_json(&b, "sam");
    assert_eq!(
        emails(&contacts),
        BTreeSet::from(["ada@example.com".to_string(), "alan@example.com".to_string()])
    );
    let ada = contacts
        .iter()
        .find(|c| field(c, "email") == Some("ada@example.com"))
        .unwrap();
    assert_eq!(field(ada, "phone"), Some("+442079460958"));
    assert_eq!(
        ada["purposes"],
        serde_json::json!(["sales"]),
        "the purposes column round-trips"
    );
}

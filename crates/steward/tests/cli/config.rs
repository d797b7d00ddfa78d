//! Global options and their environment variables, and start-up failures
//! that must end in one clear sentence.

use crate::support::{run, Steward};

#[test]
fn steward_data_dir_from_the_environment_works_like_the_option() {
    let s = Steward::new();
    let dir = s.path("from-env");

    let mut cmd = s.bare_command();
    cmd.env("STEWARD_DATA_DIR", &dir).arg("init");
    run(cmd, None).ok();
    assert!(dir.join("steward.db").is_file(), "init honours STEWARD_DATA_DIR");
    assert!(dir.join("keys").is_dir());
    assert!(!s.path("steward-data").exists(), "the default data dir is not used");

    let mut cmd = s.bare_command();
    cmd.env("STEWARD_DATA_DIR", &dir)
        .args(["user", "create", "alice", "--role", "sales", "--password-stdin"]);
    run(cmd, Some(b"a-long-password\n")).ok();

    // The same data dir through the option: the user is there.
    let mut cmd = s.bare_command();
    cmd.arg("--data-dir").arg(&dir).args(["token", "create", "alice"]);
    let out = run(cmd, None);
    out.ok();
    assert!(out.stdout.starts_with("stw_"));

    // The option wins over the environment.
    let mut cmd = s.bare_command();
    cmd.env("STEWARD_DATA_DIR", s.path("elsewhere"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["token", "create", "alice"]);
    run(cmd, None).ok();
    assert!(!s.path("elsewhere").exists());
}

#[test]
fn default_data_dir_is_steward_data_in_the_working_directory() {
    let s = Steward::new();
    run(
        {
            let mut c = s.bare_command();
            c.arg("init");
            c
        },
        None,
    )
    .ok();
    assert!(s.path("steward-data").join("steward.db").is_file());
}

#[test]
fn steward_database_url_from_the_environment() {
    let s = Steward::new();
    let db = s.path("elsewhere.db");
    let mut cmd = s.command();
    cmd.env("STEWARD_DATABASE_URL", format!("sqlite://{}", db.display()))
        .arg("init");
    run(cmd, None).ok();
    assert!(db.is_file(), "the database goes where STEWARD_DATABASE_URL says");
    assert!(!s.data_dir().join("steward.db").exists());
    assert!(s.data_dir().join("keys").is_dir(), "keys stay in the data dir");

    let mut cmd = s.command();
    cmd.env("STEWARD_DATABASE_URL", "mysql://localhost/steward").arg("init");
    let err = run(cmd, None).refused();
    assert!(err.contains("sqlite://") && err.contains("postgres://"), "{err}");
}

#[test]
fn a_data_dir_that_cannot_be_created_is_one_sentence() {
    let s = Steward::new();
    let blocker = s.path("blocker");
    std::fs::write(&blocker, "a file, not a directory").unwrap();
    let mut cmd = s.bare_command();
    cmd.arg("--data-dir").arg(blocker.join("data")).arg("init");
    let err = run(cmd, None).refused();
    assert!(err.contains("blocker"), "the error names the path: {err}");
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn a_corrupt_key_file_is_one_sentence_naming_it() {
    let s = Steward::initialised();
    s.create_user("alice", "sales");
    let key = s.data_dir().join("keys").join("master.key");
    std::fs::write(&key, "zz").unwrap();

    for args in [
        &["token", "create", "alice"][..],
        &["init"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["contact", "export", "--as", "alice"][..],
    ] {
        let out = s.run(args);
        let err = out.refused();
        assert!(
            err.contains("master.key"),
            "{args:?}: the error names the key file: {err}"
        );
        assert!(err.contains("key file"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "zz",
        "a key file is never replaced, even a corrupt one"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let s = Steward::new();
    s.run(Vec::<&str>::new()).expect_code(2);
    s.run(["frobnicate"]).expect_code(2);
    s.run(["init", "--bogus"]).expect_code(2);
    s.run(["serve", "--listen", "not-an-address"]).expect_code(2);
    let out = s.run(["--help"]);
    out.ok();
    assert!(out.stdout.contains("init") && out.stdout.contains("serve"));
    assert!(!s.data_dir().exists(), "usage errors touch nothing");
}

#[test]
fn an_invalid_inventory_stops_start_up_with_every_problem_named() {
    let s = Steward::initialised();
    let default = include_str!("../../../steward-domain/src/default_inventory.toml");
    let broken = default
        .replace(
            "contact = [\"country\", \"birth_date\"]",
            "contact = [\"country\", \"shoe_size\"]",
        )
        .replace("default_purpose = \"sales\"", "default_purpose = \"analytics\"");
    std::fs::write(s.data_dir().join("inventory.toml"), broken).unwrap();
    for args in [&["serve", "--listen", "127.0.0.1:0"][..], &["init"][..]] {
        let out = s.run(args);
        let err = out.one_line_error();
        assert!(err.contains("inventory.toml"), "{args:?}: names the file: {err}");
        assert!(err.contains("'contact.shoe_size'"), "{args:?}: {err}");
        assert!(err.contains("role 'sales'"), "{args:?}: {err}");
    }
    // A valid extension is accepted: a new contact field becomes usable.
    let extended = default.replace(
        "notes = { category = \"free_text\"",
        "loyalty_tier = { category = \"professional\", kind = \"text\", personal = true, max_length = 20 }\nnotes = { category = \"free_text\"",
    );
    let extended = extended.replace(
        "\"job_title\", \"organization_id\", \"country\", \"notes\"]",
        "\"job_title\", \"organization_id\", \"country\", \"notes\", \"loyalty_tier\"]",
    );
    std::fs::write(s.data_dir().join("inventory.toml"), extended).unwrap();
    s.create_user("sam", "sales");
    std::fs::write(s.path("in.csv"), "given_name,loyalty_tier\nAda,gold\n").unwrap();
    s.run(["contact", "import", s.path("in.csv").to_str().unwrap(), "--as", "sam"])
        .ok();
    let out = s.run(["contact", "export", "--as", "sam", "--format", "json"]);
    out.ok();
    assert!(out.stdout.contains("\"loyalty_tier\":\"gold\""), "{}", out.stdout);
}

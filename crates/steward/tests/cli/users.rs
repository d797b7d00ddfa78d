//! `steward user create` and `steward token create`.

use crate::support::{Steward, PASSWORD};

const ROLES: [&str; 6] = ["admin", "dpo", "sales", "support", "marketing", "auditor"];

fn create(s: &Steward, name: &str, role: &str, password: &str) -> crate::support::Output {
    s.run_stdin(
        ["user", "create", name, "--role", role, "--password-stdin"],
        password.as_bytes(),
    )
}

/// Whether `name` exists, judged by whether a token can be made for it.
fn user_exists(s: &Steward, name: &str) -> bool {
    s.run(["token", "create", name]).code == 0
}

#[test]
fn user_create_succeeds_for_every_built_in_role() {
    let s = Steward::initialised();
    for role in ROLES {
        let name = format!("user-{role}");
        let out = create(&s, &name, role, &format!("{PASSWORD}\n"));
        out.ok();
        assert!(!out.stdout.contains(PASSWORD), "the password is never echoed");
        assert!(!out.stderr.contains(PASSWORD), "the password is never echoed");
        assert!(user_exists(&s, &name), "{name} was created");
    }
}

#[test]
fn user_create_refusals_exit_1_with_one_sentence() {
    let s = Steward::initialised();
    create(&s, "alice", "sales", &format!("{PASSWORD}\n")).ok();

    // Duplicate user.
    let err = create(&s, "alice", "support", &format!("{PASSWORD}\n")).refused();
    assert!(err.contains("already exists"), "{err}");

    // Unknown role: the message names every valid role.
    let err = create(&s, "bob", "boss", &format!("{PASSWORD}\n")).refused();
    for role in ROLES {
        assert!(err.contains(role), "the error names the valid role {role}: {err}");
    }
    assert!(!user_exists(&s, "bob"));

    // Short password.
    let err = create(&s, "bob", "sales", "short\n").refused();
    assert!(err.contains("password"), "{err}");
    assert!(!err.contains("short"), "the password is never echoed: {err}");
    assert!(!user_exists(&s, "bob"));

    // No password at all.
    let err = create(&s, "bob", "sales", "").refused();
    assert!(err.contains("password"), "{err}");
    assert!(!user_exists(&s, "bob"));

    // Bad usernames.
    for bad in ["Bob", "bob smith", "bob!", &"b".repeat(65)] {
        let err = create(&s, bad, "sales", &format!("{PASSWORD}\n")).refused();
        assert!(err.contains("username"), "{bad}: {err}");
    }
}

#[test]
fn user_create_without_password_stdin_is_a_usage_error() {
    let s = Steward::initialised();
    let out = s.run_stdin(
        ["user", "create", "bob", "--role", "sales"],
        format!("{PASSWORD}\n").as_bytes(),
    );
    out.expect_code(2);
    assert!(
        out.stderr.contains("--password-stdin"),
        "the usage error names the missing option: {}",
        out.stderr
    );
    assert!(!user_exists(&s, "bob"));

    s.run_stdin(["user", "create", "--role", "sales", "--password-stdin"], b"x\n")
        .expect_code(2);
    s.run_stdin(["user", "create", "bob", "--password-stdin"], b"x\n")
        .expect_code(2);
    s.run_stdin(
        [
            "user",
            "create",
            "bob",
            "--role",
            "sales",
            "--password-stdin",
            "--bogus",
        ],
        b"x\n",
    )
    .expect_code(2);
}

#[test]
fn only_the_first_line_of_stdin_is_the_password() {
    let s = Steward::initialised();
    // A second line does not become part of the password, and CRLF is
    // tolerated; the login test in serve.rs checks the password itself.
    create(&s, "carol", "sales", &format!("{PASSWORD}\r\nsomething else\n")).ok();
    assert!(user_exists(&s, "carol"));
}

#[test]
fn token_create_prints_only_the_token() {
    let s = Steward::initialised();
    s.create_user("alice", "sales");

    let out = s.run(["token", "create", "alice"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is only the token: {:?}", out.stdout);
    let token = lines[0];
    assert!(token.starts_with("stw_"), "{token}");
    assert!(token.len() >= 40, "the token carries enough entropy: {token}");
    assert!(
        token.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)),
        "the token is safe in a header: {token}"
    );
    assert!(!out.stderr.contains(token), "the token appears only on stdout");

    let out = s.run(["token", "create", "alice", "--expires-in-days", "30", "--name", "ci"]);
    out.ok();
    assert_eq!(out.stdout.lines().count(), 1);
    let second = out.stdout.trim();
    assert!(second.starts_with("stw_"));
    assert_ne!(second, token, "every token is new");

    // The token is stored hashed: its text is nowhere in the database files.
    for entry in std::fs::read_dir(s.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let needle = token.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds the token in clear",
                path.display()
            );
        }
    }
}

#[test]
fn token_create_refusals() {
    let s = Steward::initialised();
    s.create_user("alice", "sales");

    let out = s.run(["token", "create", "nobody"]);
    let err = out.refused();
    assert!(out.stdout.is_empty(), "no token for an unknown user: {}", out.stdout);
    assert!(err.contains("nobody"), "{err}");

    for days in ["0", "-1", "abc", "100000"] {
        let out = s.run(["token", "create", "alice", &format!("--expires-in-days={days}")]);
        out.expect_code(2);
        assert!(out.stdout.is_empty(), "--expires-in-days {days}: {}", out.stdout);
        assert!(
            out.stderr.contains("expires-in-days"),
            "--expires-in-days {days}: {}",
            out.stderr
        );
    }
    s.run(["token", "create"]).expect_code(2);
}

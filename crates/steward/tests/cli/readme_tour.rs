//! The README's tour, run as written: every `sh` block from "## API tour"
//! on, in order, in one bash session, against a server started on a fresh
//! data dir. A block preceded by `<!-- not in the tour: … -->` is left out
//! (it needs something the test cannot give, such as a PostgreSQL server).
//!
//! `cargo run --release [-q] -- ARGS` runs the binary under test; the
//! README's `127.0.0.1:8080` becomes the test server's address. Every `curl`
//! must answer 2xx or 3xx, and every command exit 0, unless the line after
//! it says otherwise (`# → 422 …`, `# → exit 1 …`); the script's own errors
//! (an unset variable, a missing command) fail the test too.

use std::fmt::Write as _;

use crate::support::{Server, Steward};

/// The README's sh blocks of the tour, each with the line number of its
/// first line.
fn tour_blocks(readme: &str) -> Vec<(usize, Vec<String>)> {
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "## API tour")
        .expect("the README has an API tour");
    let mut blocks = Vec::new();
    let mut i = start;
    while i < lines.len() {
        if lines[i] == "```sh" {
            let skipped = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("<!-- not in the tour"));
            let first = i + 2;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i] != "```" {
                body.push(lines[i].to_string());
                i += 1;
            }
            if !skipped {
                blocks.push((first, body));
            }
        }
        i += 1;
    }
    blocks
}

/// Whether a line leaves a command unfinished: a quote left open, or a
/// trailing backslash. `open` carries the quote state across lines.
fn continues(line: &str, open: &mut Option<char>) -> bool {
    let mut chars = line.chars().peekable();
    let mut prev_space = true;
    while let Some(c) = chars.next() {
        match (*open, c) {
            (Some('\''), '\'') | (Some('"'), '"') => *open = None,
            (Some('"'), '\\') | (None, '\\') => {
                if chars.next().is_none() {
                    return true;
                }
            }
            (Some(_), _) => {}
            (None, '\'' | '"') => *open = Some(c),
            (None, '#') if prev_space => break,
            (None, _) => {}
        }
        prev_space = c.is_whitespace();
    }
    open.is_some()
}

/// What the line after a command expects of it: `# → 422 …` (an HTTP
/// status) or `# → exit 1 …`.
fn expectation(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("# → ")?;
    if let Some(code) = rest.strip_prefix("exit ") {
        let code: String = code.chars().take_while(char::is_ascii_digit).collect();
        return (!code.is_empty()).then(|| format!("exit {code}"));
    }
    let status: String = rest.chars().take(3).collect();
    (status.len() == 3 && status.chars().all(|c| c.is_ascii_digit())).then_some(status)
}

/// The blocks as one script: before each command, the README line it
/// starts on and what it must answer.
fn script(blocks: &[(usize, Vec<String>)]) -> String {
    let mut out = String::new();
    for (first, body) in blocks {
        let mut k = 0;
        while k < body.len() {
            let line = &body[k];
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                k += 1;
                continue;
            }
            let start = k;
            let mut open = None;
            while k < body.len() && continues(&body[k], &mut open) {
                k += 1;
            }
            let end = k.min(body.len() - 1);
            let expect = body.get(end + 1).and_then(|l| expectation(l)).unwrap_or_default();
            let _ = writeln!(out, "TOUR_LINE={}; TOUR_EXPECT='{expect}'", first + start);
            for l in &body[start..=end] {
                out.push_str(l);
                out.push('\n');
            }
            k = end + 1;
        }
    }
    out
}

const PRELUDE: &str = r#"
set -u
failed() { echo "README line $TOUR_LINE: $*" >> "$TOUR_FAILURES"; }
cargo() {
  local expect=0
  case "$TOUR_EXPECT" in "exit "*) expect=${TOUR_EXPECT#exit } ;; esac
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
  shift
  "$STEWARD_BIN" --data-dir "$STEWARD_TOUR_DATA" "$@"
  local rc=$?
  [ "$rc" = "$expect" ] || failed "steward $1 exited $rc, expected $expect"
  return 0
}
curl() {
  local body status
  body=$(mktemp)
  status=$(command curl -sS -o "$body" -w '%{http_code}' "$@") || failed "curl failed: $*"
  cat "$body"
  echo
  rm -f "$body"
  case "$TOUR_EXPECT" in
    [0-9][0-9][0-9]) [ "$status" = "$TOUR_EXPECT" ] || failed "HTTP $status, expected $TOUR_EXPECT" ;;
    *) case "$status" in 2??|3??) ;; *) failed "HTTP $status" ;; esac ;;
  esac
}
trap 'failed "the script stopped (exit $?)"' ERR
"#;

#[tokio::test]
async fn the_readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks = tour_blocks(&readme);
    assert!(blocks.len() >= 8, "the tour's blocks are found: {}", blocks.len());
    let s = Steward::new();
    let server = Server::start(&s).await;
    let address = server.base.trim_start_matches("http://").to_string();
    let body = script(&blocks).replace("127.0.0.1:8080", &address);
    let failures = s.path("tour-failures");
    std::fs::write(&failures, "").unwrap();
    let path = s.path("tour.sh");
    std::fs::write(&path, format!("{PRELUDE}\n{body}\necho tour-finished\n")).unwrap();
    let out = std::process::Command::new("bash")
        .arg(&path)
        .current_dir(s.tmp.path())
        .env("STEWARD_BIN", env!("CARGO_BIN_EXE_steward"))
        .env("STEWARD_TOUR_DATA", s.data_dir())
        .env("TOUR_FAILURES", &failures)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed = std::fs::read_to_string(&failures).unwrap();
    assert!(
        failed.is_empty() && stdout.contains("tour-finished"),
        "the tour failed:\n{failed}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(!stdout.contains("\"status\":5"), "no server error:\n{stdout}");
    drop(server);
}

#[test]
fn commands_and_expectations_are_found() {
    let blocks = vec![(
        10,
        vec![
            "# a comment".to_string(),
            "X=$(curl -s a \\".to_string(),
            "  -d '{\"a\":1,".to_string(),
            "       \"b\":2}' | sed 's/x/y/')".to_string(),
            "# → 422 refused".to_string(),
            "cargo run --release -- doctor --fail-under 99   # it's a comment".to_string(),
            "# → exit 1 below 99".to_string(),
        ],
    )];
    let s = script(&blocks);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "TOUR_LINE=11; TOUR_EXPECT='422'");
    assert_eq!(lines[1], "X=$(curl -s a \\");
    assert_eq!(lines[4], "TOUR_LINE=15; TOUR_EXPECT='exit 1'");
    assert_eq!(lines.len(), 6, "{s}");
}

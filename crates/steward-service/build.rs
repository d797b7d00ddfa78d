//! Matches the packages of the workspace's `Cargo.lock` against the vendored
//! RustSec advisory snapshot (`advisories/rustsec.toml`, refreshed by
//! `scripts/refresh-advisories`) and writes the findings for `steward
//! doctor`'s patch-level control into `$OUT_DIR/advisories.rs`.

use std::fmt::Write as _;
use std::path::Path;

#[path = "src/semver_req.rs"]
mod semver_req;

#[derive(Default)]
struct Advisory {
    id: String,
    package: String,
    title: String,
    informational: String,
    patched: Vec<String>,
    unaffected: Vec<String>,
}

/// One TOML basic string starting at `s` (after the opening quote):
/// (value, rest after the closing quote).
fn string(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn strings(mut s: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(i) = s.find('"') {
        match string(&s[i + 1..]) {
            Some((v, rest)) => {
                out.push(v);
                s = rest;
            }
            None => break,
        }
    }
    out
}

fn parse_snapshot(text: &str) -> (String, Vec<Advisory>) {
    let mut date = String::new();
    let mut list: Vec<Advisory> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "[[advisory]]" {
            list.push(Advisory::default());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let first = || {
            value
                .strip_prefix('"')
                .and_then(string)
                .map(|(v, _)| v)
                .unwrap_or_default()
        };
        match (key, list.last_mut()) {
            ("snapshot_date", None) => date = first(),
            ("id", Some(a)) => a.id = first(),
            ("package", Some(a)) => a.package = first(),
            ("title", Some(a)) => a.title = first(),
            ("informational", Some(a)) => a.informational = first(),
            ("patched", Some(a)) => a.patched = strings(value),
            ("unaffected", Some(a)) => a.unaffected = strings(value),
            _ => {}
        }
    }
    (date, list)
}

fn lock_packages(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            name = None;
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                out.push((n, v.trim_matches('"').to_string()));
            }
        }
    }
    out
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../..");
    let lock = root.join("Cargo.lock");
    let snapshot = root.join("advisories/rustsec.toml");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!("cargo:rerun-if-changed={}", snapshot.display());
    println!("cargo:rerun-if-changed=src/semver_req.rs");
    let packages = std::fs::read_to_string(&lock)
        .map(|t| lock_packages(&t))
        .unwrap_or_default();
    let (date, advisories) = std::fs::read_to_string(&snapshot)
        .map(|t| parse_snapshot(&t))
        .unwrap_or_default();
    let mut findings = String::new();
    for (name, version) in &packages {
        for a in advisories.iter().filter(|a| &a.package == name) {
            if semver_req::affected(version, &a.patched, &a.unaffected) {
                let _ = writeln!(
                    findings,
                    "    Finding {{ id: {:?}, package: {:?}, version: {:?}, title: {:?}, informational: {:?} }},",
                    a.id, a.package, version, a.title, a.informational
                );
            }
        }
    }
    let out = format!(
        "/// A package of `Cargo.lock` in an advisory's affected range.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq)]\n\
         pub struct Finding {{\n    pub id: &'static str,\n    pub package: &'static str,\n    pub version: &'static str,\n    pub title: &'static str,\n    /// Empty for a vulnerability; `unmaintained`, `unsound` or `notice` otherwise.\n    pub informational: &'static str,\n}}\n\
         /// The date of the vendored RustSec snapshot.\n\
         pub const SNAPSHOT_DATE: &str = {date:?};\n\
         /// Packages of `Cargo.lock` checked.\n\
         pub const PACKAGES_CHECKED: usize = {};\n\
         /// Advisories in the snapshot.\n\
         pub const ADVISORIES: usize = {};\n\
         /// What matched.\n\
         pub const FINDINGS: &[Finding] = &[\n{findings}];\n",
        packages.len(),
        advisories.len()
    );
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("advisories.rs");
    std::fs::write(dest, out).expect("write advisories.rs");
}

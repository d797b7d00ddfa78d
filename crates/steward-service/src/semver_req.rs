//! Just enough of Cargo's version requirements to match the RustSec
//! advisories' `patched` and `unaffected` ranges against `Cargo.lock`
//! (used by `build.rs`; tested here). Pre-release tags are ignored.

/// `major.minor.patch`, ignoring any pre-release or build suffix.
pub fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let core = s.trim().split(['-', '+']).next()?;
    let mut it = core.split('.').map(str::parse::<u64>);
    let v = (it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?);
    it.next().is_none().then_some(v)
}

fn parse_partial(s: &str) -> Option<(u64, Option<u64>, Option<u64>)> {
    let core = s.trim().split(['-', '+']).next()?;
    let mut it = core.split('.');
    let major = it.next()?.trim().parse().ok()?;
    let minor = match it.next() {
        Some(m) => Some(m.trim().parse().ok()?),
        None => None,
    };
    let patch = match it.next() {
        Some(p) => Some(p.trim().parse().ok()?),
        None => None,
    };
    it.next().is_none().then_some((major, minor, patch))
}

fn comparator(c: &str, v: (u64, u64, u64)) -> Option<bool> {
    let c = c.trim();
    let (op, rest) = [">=", "<=", ">", "<", "=", "^", "~"]
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("^", c));
    let (major, minor, patch) = parse_partial(rest)?;
    let low = (major, minor.unwrap_or(0), patch.unwrap_or(0));
    // A partial version compares on the parts it gives.
    let truncated = match (minor, patch) {
        (None, _) => (v.0, 0, 0),
        (Some(_), None) => (v.0, v.1, 0),
        _ => v,
    };
    Some(match op {
        ">=" => v >= low,
        ">" => truncated > low,
        "<" => v < low,
        "<=" => truncated <= low,
        "=" => truncated == low,
        "~" => {
            let high = match minor {
                Some(m) => (major, m + 1, 0),
                None => (major + 1, 0, 0),
            };
            v >= low && v < high
        }
        _ => {
            let high = if major > 0 {
                (major + 1, 0, 0)
            } else {
                match (minor, patch) {
                    (None, _) => (1, 0, 0),
                    (Some(m), _) if m > 0 => (0, m + 1, 0),
                    (Some(_), None) => (0, 1, 0),
                    (Some(_), Some(p)) => (0, 0, p + 1),
                }
            };
            v >= low && v < high
        }
    })
}

/// Whether `version` satisfies `req` (comparators separated by commas, all
/// of which must hold); `None` when either cannot be read.
pub fn matches(req: &str, version: &str) -> Option<bool> {
    let v = parse_version(version)?;
    let mut all = true;
    for c in req.split(',') {
        all &= comparator(c, v)?;
    }
    Some(all)
}

/// RustSec's rule: a version is affected unless it is in a `patched` or an
/// `unaffected` range. A range that cannot be read counts as matching (the
/// version is not reported on a guess).
pub fn affected(version: &str, patched: &[String], unaffected: &[String]) -> bool {
    parse_version(version).is_some()
        && !patched
            .iter()
            .chain(unaffected)
            .any(|r| matches(r, version).unwrap_or(true))
}

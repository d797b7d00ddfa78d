//! Legal deadlines of data-subject requests, as pure functions of explicit
//! timestamps (ARCHITECTURE.md principle 6: time is an input).
//!
//! - GDPR Art. 12(3): one calendar month from receipt, extendable by two
//!   further months (at most once, with reasons given to the subject).
//!   "One month" is counted in the local calendar of receipt: 15 March →
//!   15 April; a day that does not exist in the target month falls on its
//!   last day (31 January → 28/29 February).
//! - CCPA/CPRA (Cal. Civ. Code §1798.130): 45 days, extendable once by a
//!   further 45 days.

use chrono::{DateTime, Duration, FixedOffset, Months, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    Gdpr,
    Ccpa,
}

impl Regime {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gdpr" => Some(Self::Gdpr),
            "ccpa" => Some(Self::Ccpa),
            _ => None,
        }
    }
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gdpr => "gdpr",
            Self::Ccpa => "ccpa",
        }
    }
    /// How many extensions the regime allows.
    #[must_use]
    pub fn max_extensions(self) -> u32 {
        1
    }
}

fn add_months(t: DateTime<FixedOffset>, months: u32) -> DateTime<FixedOffset> {
    t.checked_add_months(Months::new(months)).unwrap_or(t)
}

/// The due date of a request received at `received` (with its local offset),
/// after `extensions` extensions.
#[must_use]
pub fn due_at(regime: Regime, received: DateTime<FixedOffset>, extensions: u32) -> DateTime<Utc> {
    let due = match regime {
        Regime::Gdpr => add_months(received, 1 + 2 * extensions.min(1)),
        Regime::Ccpa => received + Duration::days(45 * (1 + i64::from(extensions.min(1)))),
    };
    due.with_timezone(&Utc)
}

/// Whether a request due at `due` is overdue at `now`, or due within `soon`.
#[must_use]
pub fn status_at(due: DateTime<Utc>, now: DateTime<Utc>, soon: Duration) -> &'static str {
    if now > due {
        "overdue"
    } else if due - now <= soon {
        "due_soon"
    } else {
        "on_time"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn u(s: &str) -> DateTime<Utc> {
        t(s).with_timezone(&Utc)
    }

    #[test]
    fn gdpr_calendar_months() {
        let cases = [
            ("2026-03-15T10:00:00Z", 0, "2026-04-15T10:00:00Z"),
            ("2026-01-31T09:00:00Z", 0, "2026-02-28T09:00:00Z"), // month end, common year
            ("2028-01-31T09:00:00Z", 0, "2028-02-29T09:00:00Z"), // leap year
            ("2026-01-30T09:00:00Z", 0, "2026-02-28T09:00:00Z"),
            ("2026-02-28T09:00:00Z", 0, "2026-03-28T09:00:00Z"),
            ("2026-12-31T23:00:00Z", 0, "2027-01-31T23:00:00Z"), // year end
            ("2026-08-31T12:00:00Z", 0, "2026-09-30T12:00:00Z"),
            ("2026-01-31T09:00:00Z", 1, "2026-04-30T09:00:00Z"), // extended by two further months
            ("2026-11-30T09:00:00Z", 1, "2027-02-28T09:00:00Z"),
            ("2026-03-15T10:00:00Z", 5, "2026-06-15T10:00:00Z"), // at most one extension counts
        ];
        for (received, ext, due) in cases {
            assert_eq!(due_at(Regime::Gdpr, t(received), ext), u(due), "{received} +{ext}");
        }
    }

    #[test]
    fn gdpr_counts_in_the_local_calendar_of_receipt() {
        // 31 January 23:30 in Berlin is 31 January locally (30 Jan 22:30 UTC is not the case here):
        // local 2026-01-31T23:30+01:00 → local 2026-02-28T23:30+01:00.
        assert_eq!(
            due_at(Regime::Gdpr, t("2026-01-31T23:30:00+01:00"), 0),
            u("2026-02-28T22:30:00Z")
        );
        // The same instant read in UTC (31 Jan 22:30Z) gives the same result here.
        assert_eq!(
            due_at(Regime::Gdpr, t("2026-01-31T22:30:00Z"), 0),
            u("2026-02-28T22:30:00Z")
        );
        // 1 February 00:30 in Berlin is still 31 January in UTC: the local date decides.
        assert_eq!(
            due_at(Regime::Gdpr, t("2026-02-01T00:30:00+01:00"), 0),
            u("2026-02-28T23:30:00Z")
        );
        assert_eq!(
            due_at(Regime::Gdpr, t("2026-01-31T23:30:00Z"), 0),
            u("2026-02-28T23:30:00Z")
        );
        // Across a daylight-saving change the wall-clock time is kept in the fixed offset given.
        assert_eq!(
            due_at(Regime::Gdpr, t("2026-03-10T12:00:00-08:00"), 0),
            u("2026-04-10T20:00:00Z")
        );
    }

    #[test]
    fn ccpa_45_days() {
        assert_eq!(
            due_at(Regime::Ccpa, t("2026-01-01T00:00:00Z"), 0),
            u("2026-02-15T00:00:00Z")
        );
        assert_eq!(
            due_at(Regime::Ccpa, t("2028-02-01T00:00:00Z"), 0),
            u("2028-03-17T00:00:00Z")
        );
        assert_eq!(
            due_at(Regime::Ccpa, t("2026-01-01T00:00:00Z"), 1),
            u("2026-04-01T00:00:00Z")
        );
        assert_eq!(
            due_at(Regime::Ccpa, t("2026-01-01T00:00:00Z"), 2),
            u("2026-04-01T00:00:00Z")
        );
    }

    #[test]
    fn overdue_and_due_soon() {
        let due = u("2026-02-28T09:00:00Z");
        assert_eq!(status_at(due, u("2026-03-01T00:00:00Z"), Duration::days(7)), "overdue");
        assert_eq!(status_at(due, u("2026-02-25T00:00:00Z"), Duration::days(7)), "due_soon");
        assert_eq!(status_at(due, u("2026-02-01T00:00:00Z"), Duration::days(7)), "on_time");
        assert_eq!(status_at(due, due, Duration::days(7)), "due_soon");
    }
}

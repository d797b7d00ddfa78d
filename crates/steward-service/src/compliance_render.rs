//! The compliance report as one self-contained HTML file (inline SVG charts
//! drawn with plotters, inline CSS, no script, printable) and as CSV.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::compliance::ComplianceReport;

const BAR: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
const GRANT: RGBColor = RGBColor(0x2e, 0x7d, 0x32);
const WITHDRAW: RGBColor = RGBColor(0xc6, 0x28, 0x28);
const CLOCK: RGBColor = RGBColor(0xc6, 0x28, 0x28);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |r| format!("{:.1} %", r * 100.0))
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |r| format!("{r:.1}"))
}

/// A bar chart of labelled counts (an SVG document), or a note when empty.
fn bars(title: &str, items: &[(String, f64)], limit: Option<(f64, &str)>) -> String {
    if items.is_empty() {
        return format!("<p class=\"empty\">{}: nothing in this period.</p>", esc(title));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 260)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let top = items
            .iter()
            .map(|(_, v)| *v)
            .fold(limit.map_or(0.0, |(l, _)| l), f64::max)
            .max(1.0)
            * 1.15;
        let n = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let labels: Vec<String> = items.iter().map(|(l, _)| l.clone()).collect();
        let chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0u32..n).into_segmented(), 0f64..top);
        let Ok(mut chart) = chart else { return String::new() };
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(items.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw();
        let _ = chart.draw_series(
            Histogram::vertical(&chart).style(BAR.filled()).margin(12).data(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, (_, v))| (u32::try_from(i).unwrap_or(0), *v)),
            ),
        );
        if let Some((l, label)) = limit {
            let _ = chart
                .draw_series(LineSeries::new(
                    [(SegmentValue::Exact(0), l), (SegmentValue::Last, l)],
                    CLOCK.stroke_width(2),
                ))
                .map(|s| {
                    s.label(label)
                        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], CLOCK))
                });
            let _ = chart.configure_series_labels().border_style(BLACK).draw();
        }
        let _ = root.present();
    }
    format!("<figure class=\"chart\">{svg}</figure>")
}

/// Grants and withdrawals per month, all purposes together.
fn consent_lines(r: &ComplianceReport) -> String {
    let mut months: Vec<String> = r.consent.by_month.iter().map(|m| m.month.clone()).collect();
    months.sort();
    months.dedup();
    if months.is_empty() {
        return "<p class=\"empty\">Consent over time: nothing in this period.</p>".into();
    }
    #[allow(clippy::cast_precision_loss)]
    let sum = |month: &str, grant: bool| -> f64 {
        r.consent
            .by_month
            .iter()
            .filter(|m| m.month == month)
            .map(|m| if grant { m.grants } else { m.withdrawals })
            .sum::<u64>() as f64
    };
    let grants: Vec<f64> = months.iter().map(|m| sum(m, true)).collect();
    let withdrawals: Vec<f64> = months.iter().map(|m| sum(m, false)).collect();
    let top = grants.iter().chain(&withdrawals).copied().fold(1.0, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 260)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let n = u32::try_from(months.len()).unwrap_or(u32::MAX);
        let chart = ChartBuilder::on(&root)
            .caption("Consent given and withdrawn per month", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0u32..n).into_segmented(), 0f64..top);
        let Ok(mut chart) = chart else { return String::new() };
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(months.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => months.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw();
        for (values, colour, label) in [(&grants, GRANT, "given"), (&withdrawals, WITHDRAW, "withdrawn")] {
            let points: Vec<(SegmentValue<u32>, f64)> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (SegmentValue::CenterOf(u32::try_from(i).unwrap_or(0)), *v))
                .collect();
            let _ = chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map(|s| {
                    s.label(label)
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour))
                });
            let _ = chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())));
        }
        let _ = chart.configure_series_labels().border_style(BLACK).draw();
        let _ = root.present();
    }
    format!("<figure class=\"chart\">{svg}</figure>")
}

#[allow(clippy::cast_precision_loss)]
fn counts(map: &std::collections::BTreeMap<String, u64>) -> Vec<(String, f64)> {
    map.iter().map(|(k, v)| (k.clone(), *v as f64)).collect()
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

const STYLE: &str =
    "body{font:14px/1.45 system-ui,sans-serif;color:#1b1b1b;max-width:60rem;margin:2rem auto;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}\
th{background:#f2f4f8}.figures{display:flex;flex-wrap:wrap;gap:1rem}.figure{border:1px solid #ccc;padding:.5rem 1rem}\
.figure b{display:block;font-size:1.4rem}.chart{margin:.5rem 0}.chart svg{max-width:100%;height:auto}\
.outlier{color:#c62828;font-weight:600}.empty{color:#555}code{word-break:break-all}\
@media print{body{margin:0}h2{break-after:avoid}.chart{break-inside:avoid}}";

/// The report as one HTML file.
#[must_use]
pub fn to_html(r: &ComplianceReport) -> String {
    let mut h = String::new();
    let period = format!("{} to {}", r.from.format("%Y-%m-%d"), r.to.format("%Y-%m-%d"));
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Compliance report {}</title><style>{STYLE}</style></head><body><main>",
        esc(&period)
    );
    let _ = write!(
        h,
        "<h1>Compliance report</h1><p>Period {} (from inclusive, to exclusive), generated {}. Figures only: no person is named.</p>",
        esc(&period),
        r.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    let figure =
        |label: &str, value: String| format!("<div class=\"figure\">{}<b>{}</b></div>", esc(label), esc(&value));
    let d = &r.dsr;
    let _ = write!(
        h,
        "<h2 id=\"dsr\">Data-subject requests</h2><div class=\"figures\">{}{}{}{}{}{}</div>",
        figure("received", d.received.to_string()),
        figure("closed on time", pct(d.on_time_rate)),
        figure("median days to close", num(d.median_days_to_close)),
        figure("95th percentile days", num(d.p95_days_to_close)),
        figure("open now", d.open_now.to_string()),
        figure("overdue now", d.overdue_now.to_string()),
    );
    h.push_str(&bars("Requests by kind", &counts(&d.by_kind), None));
    h.push_str(&table(
        &["regime", "requests"],
        &d.by_regime
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect::<Vec<_>>(),
    ));

    h.push_str("<h2 id=\"consent\">Consent</h2>");
    h.push_str(&consent_lines(r));
    h.push_str(&table(
        &[
            "purpose",
            "given",
            "withdrawn",
            "current: granted",
            "current: withdrawn",
            "consent rate",
        ],
        &r.consent
            .by_purpose
            .iter()
            .map(|(k, p)| {
                vec![
                    k.clone(),
                    p.grants.to_string(),
                    p.withdrawals.to_string(),
                    p.current_granted.to_string(),
                    p.current_withdrawn.to_string(),
                    pct(p.rate),
                ]
            })
            .collect::<Vec<_>>(),
    ));

    let reads = &r.reads;
    let _ = write!(
        h,
        "<h2 id=\"reads\">Reads of personal data</h2><div class=\"figures\">{}{}</div>",
        figure("audited reads", reads.total.to_string()),
        figure(
            "median people read per account",
            format!("{:.1}", reads.median_subjects)
        ),
    );
    h.push_str(&bars("Reads by purpose", &counts(&reads.by_purpose), None));
    h.push_str(&bars("Reads by role", &counts(&reads.by_role), None));
    let rows: Vec<Vec<String>> = reads
        .by_account
        .iter()
        .map(|a| {
            vec![
                a.account.clone(),
                a.role.clone(),
                a.reads.to_string(),
                a.subjects.to_string(),
                if a.outlier { "OUTLIER".into() } else { String::new() },
            ]
        })
        .collect();
    h.push_str(
        &table(&["account (user id)", "role", "reads", "people read", "flag"], &rows).replace(
            "<td>OUTLIER</td>",
            "<td class=\"outlier\">reads far more people than its peers</td>",
        ),
    );

    let i = &r.incidents;
    let _ = write!(
        h,
        "<h2 id=\"incidents\">Breaches</h2><div class=\"figures\">{}{}{}{}</div>",
        figure("became aware", i.opened.to_string()),
        figure("authority notified", i.notified.to_string()),
        figure("within 72 hours", i.notified_within_72h.to_string()),
        figure("overdue now", i.overdue_now.to_string()),
    );
    let notify: Vec<(String, f64)> = i
        .hours_to_notify
        .iter()
        .enumerate()
        .map(|(n, h)| (format!("#{}", n + 1), *h))
        .collect();
    h.push_str(&bars(
        "Hours from awareness to notification",
        &notify,
        Some((72.0, "72 h (Art. 33)")),
    ));

    h.push_str("<h2 id=\"retention\">Retention</h2>");
    h.push_str(&bars(
        "Records deleted or anonymised by rule",
        &counts(&r.retention),
        None,
    ));

    let t = &r.training;
    let _ = write!(
        h,
        "<h2 id=\"training\">Training</h2><div class=\"figures\">{}{}</div>",
        figure("staff with personal-data roles", t.staff.to_string()),
        figure("trained (current)", pct(t.coverage)),
    );
    let s = &r.security;
    let _ =
        write!(
        h,
        "<h2 id=\"security\">Security self-audit</h2><div class=\"figures\">{}</div><p>Failing: {}. Warnings: {}.</p>",
        figure("score", format!("{}/100", s.score)),
        esc(&if s.failing.is_empty() { "none".into() } else { s.failing.join(", ") }),
        esc(&if s.warning.is_empty() { "none".into() } else { s.warning.join(", ") }),
    );
    let head = &r.tree_head;
    let root: String = head.root.iter().map(|b| format!("{b:02x}")).collect();
    let signature = base64_of(&head.signature);
    let _ = write!(
        h,
        "<h2 id=\"evidence\">Evidence</h2><p>Computed from the audit log up to the signed tree head below; \
         check it with <code>steward audit verify</code> and the key at <code>/.well-known/jwks.json</code>.</p>\
         <table><tbody><tr><th>entries</th><td>{}</td></tr><tr><th>root (SHA-256)</th><td><code>{root}</code></td></tr>\
         <tr><th>signed at</th><td>{}</td></tr><tr><th>key id</th><td><code>{}</code></td></tr>\
         <tr><th>signature (Ed25519)</th><td><code>{signature}</code></td></tr></tbody></table></main></body></html>",
        head.tree_size,
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(head.timestamp_ms)
            .map_or_else(String::new, |t| t.to_rfc3339()),
        esc(&head.key_id),
    );
    h
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The figures as CSV: `section,metric,key,value`.
#[must_use]
pub fn to_csv(r: &ComplianceReport) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut put = |s: &str, m: &str, k: &str, v: String| rows.push([s.into(), m.into(), k.into(), v]);
    let opt = |v: Option<f64>| v.map_or_else(String::new, |x| format!("{x:.4}"));
    let d = &r.dsr;
    put("dsr", "received", "", d.received.to_string());
    for (k, v) in &d.by_kind {
        put("dsr", "by_kind", k, v.to_string());
    }
    for (k, v) in &d.by_regime {
        put("dsr", "by_regime", k, v.to_string());
    }
    put("dsr", "closed", "", d.closed.to_string());
    put("dsr", "closed_on_time", "", d.closed_on_time.to_string());
    put("dsr", "on_time_rate", "", opt(d.on_time_rate));
    put("dsr", "median_days_to_close", "", opt(d.median_days_to_close));
    put("dsr", "p95_days_to_close", "", opt(d.p95_days_to_close));
    put("dsr", "open_now", "", d.open_now.to_string());
    put("dsr", "overdue_now", "", d.overdue_now.to_string());
    for (k, p) in &r.consent.by_purpose {
        put("consent", "grants", k, p.grants.to_string());
        put("consent", "withdrawals", k, p.withdrawals.to_string());
        put("consent", "current_granted", k, p.current_granted.to_string());
        put("consent", "current_withdrawn", k, p.current_withdrawn.to_string());
        put("consent", "rate", k, opt(p.rate));
    }
    for m in &r.consent.by_month {
        let key = format!("{} {}", m.month, m.purpose);
        put("consent", "month_grants", &key, m.grants.to_string());
        put("consent", "month_withdrawals", &key, m.withdrawals.to_string());
    }
    put("reads", "total", "", r.reads.total.to_string());
    for (k, v) in &r.reads.by_purpose {
        put("reads", "by_purpose", k, v.to_string());
    }
    for (k, v) in &r.reads.by_role {
        put("reads", "by_role", k, v.to_string());
    }
    for a in &r.reads.by_account {
        put("reads", "account_subjects", &a.account, a.subjects.to_string());
        if a.outlier {
            put("reads", "outlier", &a.account, "true".into());
        }
    }
    let i = &r.incidents;
    put("incidents", "opened", "", i.opened.to_string());
    put("incidents", "notified", "", i.notified.to_string());
    put(
        "incidents",
        "notified_within_72h",
        "",
        i.notified_within_72h.to_string(),
    );
    put("incidents", "median_hours_to_notify", "", opt(i.median_hours_to_notify));
    put("incidents", "overdue_now", "", i.overdue_now.to_string());
    for (k, v) in &r.retention {
        put("retention", "deleted", k, v.to_string());
    }
    put("training", "staff", "", r.training.staff.to_string());
    put("training", "trained", "", r.training.trained.to_string());
    put("security", "score", "", r.security.score.to_string());
    for f in &r.security.failing {
        put("security", "failing", f, String::new());
    }
    put("evidence", "tree_size", "", r.tree_head.tree_size.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["section", "metric", "key", "value"]);
    for row in rows {
        let _ = w.write_record(&row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

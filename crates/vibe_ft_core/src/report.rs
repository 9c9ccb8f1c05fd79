//! A self-contained HTML page with inline SVG charts (no scripts, no external
//! assets): `vibe_ft.report_html` fills it from the database. Every chart is
//! an `<svg class="chart" data-chart="...">` that draws its marks with the
//! class `mark`, or says why it has none (`data-empty`), so a reader (or a
//! test in a real browser) can tell a chart that rendered from one that did
//! not.

use std::fmt::Write;

const W: f64 = 880.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;
const PALETTE: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f",
];

/// Text for HTML (element content and attribute values).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A UTC date (YYYY-MM-DD) from Unix seconds (Hinnant's civil_from_days).
pub fn date(unix: f64) -> String {
    let z = (unix / 86_400.0).floor() as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A UTC date and time (YYYY-MM-DD HH:MM) from Unix seconds.
pub fn date_time(unix: f64) -> String {
    let secs = unix.rem_euclid(86_400.0) as i64;
    format!("{} {:02}:{:02}", date(unix), secs / 3600, (secs % 3600) / 60)
}

/// One line of a line chart, with an optional band (x, low, high) around it.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    /// Drawn as steps (a value holds until the next point), not as a line.
    pub steps: bool,
}

/// How the x axis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Unix seconds, labelled as dates.
    Time,
    /// Plain numbers (training steps).
    Number,
}

/// One bar of a timeline.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub start: f64,
    pub end: f64,
    /// A CSS class: the job's status.
    pub class: String,
    pub title: String,
}

fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(hi > lo) {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 20 {
        out.push(t);
        t += step;
    }
    out
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn empty_chart(id: &str, title: &str, why: &str) -> String {
    format!(
        "<figure><figcaption>{t}</figcaption><svg class=\"chart\" data-chart=\"{id}\" data-empty=\"{w}\" \
         viewBox=\"0 0 {W} 80\" width=\"{W}\" height=\"80\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"{LEFT}\" y=\"44\" class=\"empty\">{w}</text></svg></figure>\n",
        id = escape(id),
        t = escape(title),
        w = escape(why)
    )
}

/// A line chart (several series, bands drawn under their lines, a legend).
pub fn line_chart(
    id: &str,
    title: &str,
    x_axis: XAxis,
    y_label: &str,
    y_range: Option<(f64, f64)>,
    series: &[Series],
) -> String {
    let all_x = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0).chain(s.band.iter().map(|b| b.0)));
    let (mut x0, mut x1) = all_x.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !x0.is_finite() {
        return empty_chart(id, title, "no data yet");
    }
    let (y0, y1) = y_range.unwrap_or_else(|| {
        let ys = series.iter().flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.1)
                .chain(s.band.iter().flat_map(|b| [b.1, b.2]))
        });
        let (a, b) = ys
            .filter(|y| y.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        if !a.is_finite() {
            (0.0, 1.0)
        } else if a == b {
            (a - 0.5, b + 0.5)
        } else {
            let pad = (b - a) * 0.05;
            ((a - pad).min(if a >= 0.0 { 0.0 } else { a - pad }), b + pad)
        }
    });
    if x1 <= x0 {
        let widen = if x_axis == XAxis::Time { 43_200.0 } else { 0.5 };
        x0 -= widen;
        x1 += widen;
    }
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - ((y - y0) / (y1 - y0)).clamp(-0.02, 1.02) * ph;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure><figcaption>{t}</figcaption><svg class=\"chart\" data-chart=\"{id}\" viewBox=\"0 0 {W} {H}\" \
         width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{t}\">",
        id = escape(id),
        t = escape(title)
    );
    // axes and grid
    for t in nice_ticks(y0, y1, 5) {
        let y = sy(t);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(t)
        );
    }
    // Time: whole days, or whole hours when the span is under two days.
    let short = x1 - x0 < 2.0 * 86_400.0;
    let xticks = if x_axis == XAxis::Time {
        let unit = if short { 3_600.0 } else { 86_400.0 };
        let units = ((x1 - x0) / unit).max(1.0);
        let step = unit * (units / 6.0).ceil().max(1.0);
        let mut t = (x0 / unit).ceil() * unit;
        let mut v = Vec::new();
        while t <= x1 && v.len() < 12 {
            v.push(t);
            t += step;
        }
        if v.is_empty() {
            v.push(x0);
        }
        v
    } else {
        nice_ticks(x0, x1, 6)
    };
    for t in xticks {
        let x = sx(t);
        let label = match x_axis {
            XAxis::Time if short => date_time(t),
            XAxis::Time => date(t),
            XAxis::Number => fmt_num(t),
        };
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            TOP + ph + 18.0
        );
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{:.1}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
         <text class=\"label\" x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>",
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if s.band.len() >= 2 {
            let mut d = String::new();
            for (k, b) in s.band.iter().enumerate() {
                let _ = write!(d, "{}{:.1},{:.1}", if k == 0 { "M" } else { "L" }, sx(b.0), sy(b.2));
            }
            for b in s.band.iter().rev() {
                let _ = write!(d, "L{:.1},{:.1}", sx(b.0), sy(b.1));
            }
            let _ = write!(
                svg,
                "<path class=\"mark band\" d=\"{d}Z\" fill=\"{color}\" fill-opacity=\"0.15\" stroke=\"none\"/>"
            );
        } else {
            for b in &s.band {
                let _ = write!(
                    svg,
                    "<line class=\"mark band\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-opacity=\"0.4\" stroke-width=\"6\"/>",
                    sy(b.1),
                    sy(b.2),
                    x = sx(b.0)
                );
            }
        }
        let mut d = String::new();
        let mut prev: Option<(f64, f64)> = None;
        for (k, p) in s.points.iter().enumerate() {
            if s.steps {
                if let Some((_, py)) = prev {
                    let _ = write!(d, "L{:.1},{:.1}", sx(p.0), sy(py));
                }
            }
            let _ = write!(d, "{}{:.1},{:.1}", if k == 0 { "M" } else { "L" }, sx(p.0), sy(p.1));
            prev = Some(*p);
        }
        if s.points.len() >= 2 {
            let _ = write!(
                svg,
                "<path class=\"mark line\" d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>"
            );
        }
        for p in &s.points {
            let _ = write!(
                svg,
                "<circle class=\"mark point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"><title>{}: {} at {}</title></circle>",
                sx(p.0),
                sy(p.1),
                escape(&s.name),
                fmt_num(p.1),
                if x_axis == XAxis::Time { date_time(p.0) } else { fmt_num(p.0) }
            );
        }
        let ly = TOP + 14.0 + 18.0 * i as f64;
        let name: String = s.name.chars().take(26).collect();
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
             <text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LEFT + pw + 14.0,
            ly - 10.0,
            LEFT + pw + 30.0,
            ly,
            escape(&name)
        );
    }
    svg.push_str("</svg></figure>\n");
    svg
}

/// Horizontal bars over time, one row each (the jobs timeline).
pub fn timeline(id: &str, title: &str, bars: &[Bar]) -> String {
    if bars.is_empty() {
        return empty_chart(id, title, "no jobs yet");
    }
    let x0 = bars.iter().map(|b| b.start).fold(f64::INFINITY, f64::min);
    let mut x1 = bars
        .iter()
        .map(|b| b.end.max(b.start))
        .fold(f64::NEG_INFINITY, f64::max);
    if x1 <= x0 {
        x1 = x0 + 3600.0;
    }
    let row = 22.0;
    let h = TOP + BOTTOM + row * bars.len() as f64;
    let left = 220.0;
    let pw = W - left - 20.0;
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure><figcaption>{t}</figcaption><svg class=\"chart\" data-chart=\"{id}\" viewBox=\"0 0 {W} {h}\" \
         width=\"{W}\" height=\"{h}\" role=\"img\" aria-label=\"{t}\">",
        id = escape(id),
        t = escape(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + row * i as f64;
        let xa = sx(b.start);
        let w = (sx(b.end.max(b.start)) - xa).max(3.0);
        let label: String = b.label.chars().take(34).collect();
        let _ = write!(
            svg,
            "<text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"mark bar {}\" x=\"{xa:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"3\"><title>{}</title></rect>",
            left - 8.0,
            y + 14.0,
            escape(&label),
            escape(&b.class),
            y + 3.0,
            row - 6.0,
            escape(&b.title)
        );
    }
    let ya = TOP + row * bars.len() as f64 + 4.0;
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{left}\" x2=\"{:.1}\" y1=\"{ya:.1}\" y2=\"{ya:.1}\"/>\
         <text class=\"tick\" x=\"{left}\" y=\"{:.1}\">{}</text>\
         <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></svg></figure>\n",
        left + pw,
        ya + 18.0,
        date_time(x0),
        left + pw,
        ya + 18.0,
        date_time(x1)
    );
    svg
}

/// A table; cells are escaped.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(t, "<th>{}</th>", escape(h));
    }
    t.push_str("</tr></thead><tbody>");
    for r in rows {
        t.push_str("<tr>");
        for c in r {
            let _ = write!(t, "<td>{}</td>", escape(c));
        }
        t.push_str("</tr>");
    }
    t.push_str("</tbody></table>\n");
    t
}

/// The whole page: a title, a line under it, and sections of (heading, body HTML).
pub fn page(title: &str, subtitle: &str, sections: &[(String, String)]) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1><p class=\"sub\">{s}</p>\n",
        t = escape(title),
        s = escape(subtitle)
    );
    for (h, body) in sections {
        let _ = write!(html, "<section><h2>{}</h2>\n{body}</section>\n", escape(h));
    }
    html.push_str("</body></html>\n");
    html
}

const STYLE: &str = "body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#111;background:#fff}\
h1{font-size:22px;margin:0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}\
.sub{color:#555;margin:4px 0 16px}figure{margin:8px 0 18px}figcaption{font-weight:600;margin-bottom:4px}\
svg.chart{display:block;max-width:100%;height:auto;background:#fafafa;border:1px solid #e5e5e5}\
.grid{stroke:#e5e5e5}.axis{stroke:#888}.tick,.legend,.label{font-size:11px;fill:#333}.empty{font-size:13px;fill:#777}\
.bar{fill:#64748b}.bar.succeeded{fill:#16a34a}.bar.failed{fill:#dc2626}.bar.cancelled{fill:#a3a3a3}\
.bar.running,.bar.queued,.bar.validating_files{fill:#2563eb}.bar.pending,.bar.exporting,.bar.uploading,.bar.submitted{fill:#f59e0b}\
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f3f4f6}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            escape("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date(0.0), "1970-01-01");
        assert_eq!(date(1_796_256_000.0), "2026-12-03");
        assert_eq!(date(951_782_400.0), "2000-02-29");
        assert_eq!(date_time(1_796_256_000.0 + 3_723.0), "2026-12-03 01:02");
    }

    #[test]
    fn charts_draw_marks_or_say_why_not() {
        let s = Series {
            name: "ft:<m>".into(),
            points: vec![(1.0, 0.5), (2.0, 0.25)],
            band: vec![(1.0, 0.4, 0.6), (2.0, 0.2, 0.3)],
            steps: false,
        };
        let c = line_chart("loss", "Loss", XAxis::Number, "loss", None, &[s]);
        assert!(c.contains("class=\"mark line\"") && c.contains("class=\"mark band\"") && c.contains("ft:&lt;m&gt;"));
        assert!(!c.contains("<m>"));
        let e = line_chart("loss", "Loss", XAxis::Number, "loss", None, &[]);
        assert!(e.contains("data-empty") && !e.contains("mark"));
        let t = timeline(
            "jobs",
            "Jobs",
            &[Bar {
                label: "a".into(),
                start: 0.0,
                end: 10.0,
                class: "succeeded".into(),
                title: "t".into(),
            }],
        );
        assert!(t.contains("mark bar succeeded"));
        let p = page("<r>", "s", &[("h".into(), c)]);
        assert!(p.starts_with("<!DOCTYPE html>") && !p.contains("<script") && !p.contains("http"));
    }
}

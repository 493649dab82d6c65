//! The one table every part of the benchmark writes to: each figure beside a baseline measured
//! in the same run, and their ratio, because the machines this runs on are noisy and only
//! ratios compare across runs.

use std::fmt::Write as _;
use std::time::Duration;

/// Whether a bigger figure is better (throughput) or worse (latency, size, calls): the table
/// says which, so a ratio reads without guessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// One measured figure and its baseline.
#[derive(Clone, Debug)]
pub struct Row {
    /// The part of the system: `request path`, `lambda`, `cold start`, `relay`, ...
    pub area: &'static str,
    /// What was measured, e.g. `GET /apps/{slug}, ES256, p50`.
    pub figure: String,
    pub value: f64,
    /// `req/s`, `ms`, `MB`, `calls`, `USD`, ...
    pub unit: &'static str,
    /// What the baseline is, e.g. `bare hyper, same ES256 check + map lookup`.
    pub baseline_name: String,
    pub baseline: f64,
    pub better: Better,
}

impl Row {
    /// `value / baseline`; `None` when the baseline is zero.
    pub fn ratio(&self) -> Option<f64> {
        (self.baseline != 0.0).then(|| self.value / self.baseline)
    }
}

/// Every figure of one run, printed once at the end as a Markdown table.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Adds a figure: `value` in `unit` beside `baseline` (what `baseline_name` says, same unit).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        area: &'static str,
        figure: impl Into<String>,
        value: f64,
        unit: &'static str,
        better: Better,
        baseline_name: impl Into<String>,
        baseline: f64,
    ) {
        let row =
            Row { area, figure: figure.into(), value, unit, baseline_name: baseline_name.into(), baseline, better };
        // Printed as it comes, so a long run shows progress and a failure later loses nothing.
        println!("  {}", one_line(&row));
        self.rows.push(row);
    }

    /// Two latency rows, `{figure}, p50` and `{figure}, p99` in ms: `latencies` beside
    /// `baseline`'s (both sorted here).
    pub fn p50_p99_ms(
        &mut self,
        area: &'static str,
        figure: &str,
        latencies: &mut [Duration],
        baseline_name: &str,
        baseline: &mut [Duration],
    ) {
        let (got, base) = (crate::p50_p99_ms(latencies), crate::p50_p99_ms(baseline));
        self.add(area, format!("{figure}, p50"), got.0, "ms", Better::Lower, baseline_name, base.0);
        self.add(area, format!("{figure}, p99"), got.1, "ms", Better::Lower, baseline_name, base.1);
    }

    /// The whole table, Markdown, ready for the README.
    pub fn table(&self) -> String {
        let mut out = String::from("ratio = value / baseline (↑ higher is better, ↓ lower is better)\n\n");
        out.push_str("| area | figure | value | baseline | baseline value | ratio |\n");
        out.push_str("|------|--------|------:|----------|---------------:|------:|\n");
        for r in &self.rows {
            let ratio = r.ratio().map_or("n/a".to_owned(), |x| format!("{}{}", number(x), arrow(r.better)));
            let _ = writeln!(
                out,
                "| {} | {} | {} {} | {} | {} {} | {} |",
                r.area,
                r.figure,
                number(r.value),
                r.unit,
                r.baseline_name,
                number(r.baseline),
                r.unit,
                ratio
            );
        }
        out
    }
}

fn arrow(better: Better) -> &'static str {
    match better {
        Better::Higher => " ↑",
        Better::Lower => " ↓",
    }
}

fn one_line(r: &Row) -> String {
    let ratio = r.ratio().map_or("n/a".to_owned(), |x| format!("{}x", number(x)));
    format!(
        "{:<14} {:<52} {:>12} {:<6} vs {} {} ({ratio})",
        r.area,
        r.figure,
        number(r.value),
        r.unit,
        number(r.baseline),
        r.baseline_name
    )
}

/// Three significant figures, thousands grouped, no exponent.
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let magnitude = if x == 0.0 { 0 } else { x.abs().log10().floor() as i32 };
    let decimals = (2 - magnitude).clamp(0, 6) as usize;
    let text = format!("{x:.decimals$}");
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_figures() {
        assert_eq!(number(42_137.9), "42,138");
        assert_eq!(number(0.7412), "0.741");
        assert_eq!(number(1.0), "1.00");
        assert_eq!(number(-1234.6), "-1,235");
        assert_eq!(number(0.0), "0.00");
    }

    #[test]
    fn the_table_has_a_ratio_per_row() {
        let mut report = Report::default();
        report.add("relay", "messages/s", 50_000.0, "msg/s", Better::Higher, "bare echo", 100_000.0);
        report.add("sizes", "apps binary", 9.5, "MB", Better::Lower, "hello world", 0.0);
        let table = report.table();
        assert!(table.contains("| 0.500 ↑ |"), "{table}");
        assert!(table.contains("| n/a |"), "{table}");
    }
}

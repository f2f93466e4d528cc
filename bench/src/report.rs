//! Formatting: durations, rates, memory, and plain-text tables.

use std::time::Duration;

/// A latency in microseconds, in the unit that keeps three significant digits.
pub fn latency(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if us < 10_000 {
        format!("{ms:.2}ms")
    } else if us < 100_000 {
        format!("{ms:.1}ms")
    } else if us < 10_000_000 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", ms / 1000.0)
    }
}

pub fn rate(per_s: f64) -> String {
    if per_s >= 100.0 {
        format!("{per_s:.0}")
    } else {
        format!("{per_s:.1}")
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// CPU time per unit, in milliseconds.
pub fn cpu_per(cpu: Duration, units: u64) -> String {
    if units == 0 {
        return "-".to_owned();
    }
    format!("{:.3}", cpu.as_secs_f64() * 1000.0 / units as f64)
}

pub fn ratio(num: f64, den: f64) -> String {
    if den <= 0.0 {
        return "-".to_owned();
    }
    format!("{:.2}", num / den)
}

/// Parses `5s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.');
    let (number, unit) = split.map_or((s, ""), |i| s.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 5s, 500ms, 2m)"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// A table with column groups; every cell is right-aligned except the first column.
pub struct Table {
    /// (label, number of columns) spanning the header; the first group
    /// usually covers the row-name column.
    pub groups: Vec<(String, usize)>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

const SEP: &str = " | ";

impl Table {
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        // Widen the last column of a group whose label is wider than its columns.
        let mut start = 0;
        for (label, span) in &self.groups {
            let end = (start + span).min(columns);
            if end > start {
                let inner: usize = widths[start..end].iter().sum::<usize>() + 2 * (end - start - 1);
                let need = label.chars().count();
                if need > inner {
                    widths[end - 1] += need - inner;
                }
            }
            start = end;
        }
        let mut out = String::new();
        // The group line.
        let mut start = 0;
        let mut parts = Vec::new();
        for (label, span) in &self.groups {
            let end = (start + span).min(columns);
            let inner: usize =
                widths[start..end].iter().sum::<usize>() + 2 * end.saturating_sub(start + 1);
            parts.push(format!("{label:<inner$}"));
            start = end;
        }
        out.push_str(parts.join(SEP).trim_end());
        out.push('\n');
        let line = |cells: &[String]| {
            let mut start = 0;
            let mut parts = Vec::new();
            for (_, span) in &self.groups {
                let end = (start + span).min(columns);
                let group: Vec<String> = (start..end)
                    .map(|i| {
                        let cell = cells.get(i).map_or("", String::as_str);
                        let w = widths[i];
                        if i == 0 {
                            format!("{cell:<w$}")
                        } else {
                            format!("{cell:>w$}")
                        }
                    })
                    .collect();
                parts.push(group.join("  "));
                start = end;
            }
            parts.join(SEP).trim_end().to_owned()
        };
        out.push_str(&line(&self.headers));
        out.push('\n');
        let rule: usize = widths.iter().sum::<usize>()
            + 2 * columns.saturating_sub(self.groups.len())
            + SEP.len() * self.groups.len().saturating_sub(1);
        out.push_str(&"-".repeat(rule));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_keep_three_digits() {
        assert_eq!(latency(850), "0.85ms");
        assert_eq!(latency(12_345), "12.3ms");
        assert_eq!(latency(201_600), "202ms");
        assert_eq!(latency(12_500_000), "12.5s");
    }

    #[test]
    fn rates_ratios_and_cpu() {
        assert_eq!(rate(3040.4), "3040");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(ratio(1.0, 4.0), "0.25");
        assert_eq!(ratio(1.0, 0.0), "-");
        assert_eq!(cpu_per(Duration::from_millis(310), 1000), "0.310");
        assert_eq!(cpu_per(Duration::from_millis(310), 0), "-");
        assert_eq!(mib(51_200), "50.0 MiB");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn tables_align_under_their_groups() {
        let table = Table {
            groups: vec![
                ("".into(), 1),
                ("meterpay".into(), 2),
                ("floor (emulator alone)".into(), 1),
            ],
            headers: vec!["row".into(), "req/s".into(), "p50".into(), "req/s".into()],
            rows: vec![
                vec!["warm".into(), "1200".into(), "9.10ms".into(), "3000".into()],
                vec!["read".into(), "15000".into(), "1.00ms".into(), "n/a".into()],
            ],
        };
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "     | meterpay      | floor (emulator alone)");
        assert_eq!(lines[1], "row  | req/s     p50 |                  req/s");
        assert_eq!(lines[3], "warm |  1200  9.10ms |                   3000");
        assert_eq!(lines[4], "read | 15000  1.00ms |                    n/a");
        assert_eq!(lines[2].len(), lines[1].len());
    }
}

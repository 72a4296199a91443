//! A strict parser of Prometheus text 0.0.4 and OpenMetrics 1.0 text, for
//! the property tests: stricter than the format rules where vitals
//! promises more (every family has a `TYPE`, no blank lines, no comments
//! other than metadata, no timestamps), and as strict as the rules and the
//! reference parsers elsewhere (names, escaping, metadata before samples,
//! families contiguous, no series twice, counters finite and not negative,
//! summary and histogram structure, `# EOF`).
//!
//! `parse` returns the families with their unescaped help, unit and label
//! values, so a test can compare them with the snapshot they came from.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::{HashMap, HashSet};

/// Which text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// The value as written (integers are compared as text: an `f64`
    /// cannot hold every `u64`).
    pub raw: String,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The labels without `skip`, sorted: the series group of a summary or
    /// histogram sample.
    fn group(&self, skip: &str) -> Vec<(String, String)> {
        let mut g: Vec<_> = self
            .labels
            .iter()
            .filter(|(k, _)| k != skip)
            .cloned()
            .collect();
        g.sort();
        g
    }
}

/// One metric family: its metadata and samples, in the order written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: String,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

/// Parses `text` strictly; the error names the line and what is wrong.
pub fn parse(text: &str, format: Format) -> Result<Vec<Family>, String> {
    Parser::new(format).run(text)
}

pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Parser {
    format: Format,
    families: Vec<Family>,
    /// Family names seen so far (contiguity, uniqueness).
    family_names: HashSet<String>,
    /// Every sample name any family so far may expose, with its family:
    /// two families must never be able to claim one sample name.
    claimed: HashMap<String, String>,
    /// (sample name, sorted labels) of every sample written.
    series: HashSet<(String, Vec<(String, String)>)>,
    /// Series groups already left in the current family (OpenMetrics
    /// requires each group's samples together).
    left_groups: HashSet<Vec<(String, String)>>,
    current_group: Option<Vec<(String, String)>>,
}

fn err<T>(line_no: usize, line: &str, what: impl std::fmt::Display) -> Result<T, String> {
    let shown: String = line.chars().take(200).collect();
    Err(format!("line {line_no}: {what}: {shown:?}"))
}

impl Parser {
    fn new(format: Format) -> Self {
        Parser {
            format,
            families: Vec::new(),
            family_names: HashSet::new(),
            claimed: HashMap::new(),
            series: HashSet::new(),
            left_groups: HashSet::new(),
            current_group: None,
        }
    }

    fn run(mut self, text: &str) -> Result<Vec<Family>, String> {
        if text.is_empty() {
            return match self.format {
                Format::Prometheus => Ok(Vec::new()),
                Format::OpenMetrics => Err("empty OpenMetrics text: no # EOF".into()),
            };
        }
        let Some(body) = text.strip_suffix('\n') else {
            return Err("the text does not end with a newline".into());
        };
        let mut eof = false;
        for (i, line) in body.split('\n').enumerate() {
            let n = i + 1;
            if eof {
                return err(n, line, "a line after # EOF");
            }
            if line.is_empty() {
                return err(n, line, "blank line");
            }
            if line == "# EOF" {
                if self.format == Format::Prometheus {
                    return err(n, line, "# EOF in Prometheus 0.0.4 text");
                }
                eof = true;
                continue;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                self.metadata(n, line, rest)?;
            } else if line.starts_with('#') {
                return err(n, line, "a comment that is not HELP, TYPE or UNIT");
            } else {
                self.sample(n, line)?;
            }
        }
        if self.format == Format::OpenMetrics && !eof {
            return Err("OpenMetrics text without # EOF at the end".into());
        }
        self.finish_family()?;
        Ok(self.families)
    }

    fn metadata(&mut self, n: usize, line: &str, rest: &str) -> Result<(), String> {
        let (keyword, rest) = rest
            .split_once(' ')
            .ok_or_else(|| format!("line {n}: metadata without a name: {line:?}"))?;
        // HELP text may be empty, so the separator after the name may be
        // the line's end in no format: both require `# HELP name text`.
        let (name, value) = rest
            .split_once(' ')
            .ok_or_else(|| format!("line {n}: metadata without a value: {line:?}"))?;
        if !is_metric_name(name) {
            return err(n, line, "invalid metric family name");
        }
        let is_current = self.families.last().is_some_and(|f| f.name == name);
        if !is_current {
            if self.family_names.contains(name) {
                return err(n, line, "family written in two places");
            }
            self.finish_family()?;
            self.family_names.insert(name.to_owned());
            self.families.push(Family {
                name: name.to_owned(),
                ..Family::default()
            });
            self.left_groups.clear();
            self.current_group = None;
        }
        let format = self.format;
        let family = self.families.last_mut().unwrap();
        if !family.samples.is_empty() {
            return err(n, line, "metadata after the family's samples");
        }
        match keyword {
            "HELP" => {
                if family.help.is_some() {
                    return err(n, line, "second HELP");
                }
                family.help = Some(
                    unescape_help(value, format).map_err(|e| format!("line {n}: {e}: {line:?}"))?,
                );
            }
            "TYPE" => {
                if !family.kind.is_empty() {
                    return err(n, line, "second TYPE");
                }
                let known: &[&str] = match format {
                    Format::Prometheus => &["counter", "gauge", "histogram", "summary", "untyped"],
                    Format::OpenMetrics => &[
                        "counter",
                        "gauge",
                        "histogram",
                        "gaugehistogram",
                        "stateset",
                        "info",
                        "summary",
                        "unknown",
                    ],
                };
                if !known.contains(&value) {
                    return err(n, line, "unknown TYPE");
                }
                family.kind = value.to_owned();
            }
            "UNIT" if format == Format::OpenMetrics => {
                if family.unit.is_some() {
                    return err(n, line, "second UNIT");
                }
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                {
                    return err(n, line, "invalid UNIT");
                }
                if !name.ends_with(&format!("_{value}")) {
                    return err(n, line, "UNIT is not the family name's suffix");
                }
                family.unit = Some(value.to_owned());
            }
            _ => return err(n, line, "unknown metadata keyword"),
        }
        Ok(())
    }

    /// Sample names the family exposes, by type.
    fn allowed(format: Format, family: &Family) -> Vec<String> {
        let suffixes: &[&str] = match (format, family.kind.as_str()) {
            (Format::Prometheus, "counter") => &[""],
            (Format::OpenMetrics, "counter") => &["_total", "_created"],
            (_, "summary") => &["", "_sum", "_count", "_created"],
            (_, "histogram") => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        suffixes
            .iter()
            .map(|s| format!("{}{s}", family.name))
            .collect()
    }

    fn sample(&mut self, n: usize, line: &str) -> Result<(), String> {
        let Some(family) = self.families.last() else {
            return err(n, line, "a sample before any TYPE");
        };
        if family.kind.is_empty() {
            return err(n, line, "a sample of a family without TYPE");
        }
        let sample = parse_sample(line).map_err(|e| format!("line {n}: {e}: {line:?}"))?;
        let format = self.format;
        let allowed = Self::allowed(format, family);
        if !allowed.contains(&sample.name) {
            return err(
                n,
                line,
                format_args!(
                    "sample name not of family {:?} ({})",
                    family.name, family.kind
                ),
            );
        }
        let mut key_labels = sample.labels.clone();
        key_labels.sort();
        if !self.series.insert((sample.name.clone(), key_labels)) {
            return err(n, line, "series written twice");
        }
        let suffix = &sample.name[family.name.len()..];
        let kind = family.kind.clone();
        let v = sample.value;
        match (kind.as_str(), suffix) {
            ("counter", _) if !v.is_finite() || v < 0.0 => {
                return err(n, line, "counter value not finite and >= 0");
            }
            ("summary", "") => {
                let Some(q) = sample.label("quantile") else {
                    return err(n, line, "summary sample without quantile");
                };
                let q = parse_value(q).map_err(|e| format!("line {n}: quantile {e}"))?;
                if !(0.0..=1.0).contains(&q) {
                    return err(n, line, "quantile outside [0, 1]");
                }
                if v < 0.0 {
                    return err(n, line, "negative quantile value");
                }
            }
            ("summary" | "histogram", "_sum") if !v.is_finite() || v < 0.0 => {
                return err(n, line, "_sum not finite and >= 0");
            }
            ("summary" | "histogram", "_count") | ("histogram", "_bucket")
                if !v.is_finite() || v < 0.0 || v.fract() != 0.0 =>
            {
                return err(n, line, "count not a whole number >= 0");
            }
            _ => {}
        }
        if matches!(kind.as_str(), "summary" | "histogram")
            && !suffix.is_empty()
            && suffix != "_bucket"
            && (sample.label("quantile").is_some() && kind == "summary"
                || sample.label("le").is_some() && kind == "histogram")
        {
            return err(n, line, "quantile/le label on _sum or _count");
        }
        if kind == "histogram" && suffix == "_bucket" {
            let Some(le) = sample.label("le") else {
                return err(n, line, "bucket without le");
            };
            let le = parse_value(le).map_err(|e| format!("line {n}: le {e}"))?;
            if le.is_nan() {
                return err(n, line, "le is NaN");
            }
            if format == Format::OpenMetrics
                && le.is_infinite()
                && sample.label("le") != Some("+Inf")
            {
                return err(n, line, "le infinity not spelled +Inf");
            }
        }
        // Series groups (labels without quantile/le) stay together.
        let skip = match kind.as_str() {
            "summary" => "quantile",
            "histogram" => "le",
            _ => "",
        };
        let group = sample.group(skip);
        if self.current_group.as_ref() != Some(&group) {
            if self.left_groups.contains(&group) && matches!(kind.as_str(), "summary" | "histogram")
            {
                return err(n, line, "samples of one series group not together");
            }
            if let Some(old) = self.current_group.take() {
                self.left_groups.insert(old);
            }
            self.current_group = Some(group);
        }
        self.families.last_mut().unwrap().samples.push(sample);
        Ok(())
    }

    /// Checks the finished family as a whole and claims its sample names.
    fn finish_family(&mut self) -> Result<(), String> {
        let Some(family) = self.families.last() else {
            return Ok(());
        };
        if family.kind.is_empty() {
            return Err(format!("family {:?} has no TYPE", family.name));
        }
        for name in Self::allowed(self.format, family) {
            if let Some(other) = self.claimed.insert(name.clone(), family.name.clone()) {
                return Err(format!(
                    "families {other:?} and {:?} both expose {name:?}",
                    family.name
                ));
            }
        }
        // A family's own name is claimed too (OpenMetrics counters and
        // histograms have no sample of that name, but a later family of
        // that name would clash in every parser).
        if let Some(other) = self
            .claimed
            .insert(family.name.clone(), family.name.clone())
            .filter(|o| *o != family.name)
        {
            return Err(format!("families {other:?} and {:?} clash", family.name));
        }
        match family.kind.as_str() {
            "summary" => check_summary(family),
            "histogram" => check_histogram(family),
            _ => Ok(()),
        }
    }
}

/// Every summary series has its quantiles (ascending, once each), one
/// `_sum` and one `_count`.
fn check_summary(family: &Family) -> Result<(), String> {
    /// Quantile levels, `_sum` lines and `_count` lines of one series.
    type Lines = (Vec<f64>, usize, usize);
    let mut groups: HashMap<Vec<(String, String)>, Lines> = HashMap::new();
    for s in &family.samples {
        let entry = groups.entry(s.group("quantile")).or_default();
        let suffix = &s.name[family.name.len()..];
        match suffix {
            "" => entry
                .0
                .push(parse_value(s.label("quantile").unwrap()).unwrap()),
            "_sum" => entry.1 += 1,
            "_count" => entry.2 += 1,
            _ => {}
        }
    }
    for (group, (quantiles, sums, counts)) in groups {
        if sums != 1 || counts != 1 {
            return Err(format!(
                "summary {:?} series {group:?}: {sums} _sum and {counts} _count lines",
                family.name
            ));
        }
        if quantiles.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "summary {:?} series {group:?}: quantiles not ascending: {quantiles:?}",
                family.name
            ));
        }
    }
    Ok(())
}

/// Every histogram series: buckets with ascending bounds and cumulative
/// counts ending with `+Inf`, equal to `_count`; one `_sum` and `_count`.
fn check_histogram(family: &Family) -> Result<(), String> {
    #[derive(Default)]
    struct G {
        bounds: Vec<f64>,
        counts: Vec<f64>,
        sum: Vec<f64>,
        count: Vec<f64>,
    }
    let mut groups: HashMap<Vec<(String, String)>, G> = HashMap::new();
    for s in &family.samples {
        let g = groups.entry(s.group("le")).or_default();
        match &s.name[family.name.len()..] {
            "_bucket" => {
                g.bounds.push(parse_value(s.label("le").unwrap()).unwrap());
                g.counts.push(s.value);
            }
            "_sum" => g.sum.push(s.value),
            "_count" => g.count.push(s.value),
            _ => {}
        }
    }
    for (group, g) in groups {
        let name = &family.name;
        if g.sum.len() != 1 || g.count.len() != 1 {
            return Err(format!(
                "histogram {name:?} {group:?}: {} _sum and {} _count",
                g.sum.len(),
                g.count.len()
            ));
        }
        if g.bounds.last() != Some(&f64::INFINITY) {
            return Err(format!("histogram {name:?} {group:?}: no +Inf bucket"));
        }
        if g.bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "histogram {name:?} {group:?}: bounds not ascending {:?}",
                g.bounds
            ));
        }
        if g.counts.windows(2).any(|w| w[0] > w[1]) {
            return Err(format!(
                "histogram {name:?} {group:?}: buckets not cumulative {:?}",
                g.counts
            ));
        }
        if g.counts.last() != g.count.first() {
            return Err(format!(
                "histogram {name:?} {group:?}: +Inf bucket {:?} != _count {:?}",
                g.counts.last(),
                g.count
            ));
        }
    }
    Ok(())
}

fn unescape_help(text: &str, format: Format) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') if format == Format::OpenMetrics => out.push('"'),
                other => return Err(format!("invalid escape in HELP: \\{other:?}")),
            },
            '"' if format == Format::OpenMetrics => {
                return Err("unescaped '\"' in OpenMetrics HELP".into())
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `NaN`, `+Inf`, `-Inf` or a plain decimal number (what vitals writes,
/// and what every parser reads).
pub fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => return Ok(f64::NAN),
        "+Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let b = text.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return Err(format!("value {text:?} is not a number"));
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return Err(format!("value {text:?}: no digits after '.'"));
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return Err(format!("value {text:?}: no exponent digits"));
        }
    }
    if i != b.len() {
        return Err(format!("value {text:?} has trailing characters"));
    }
    let v: f64 = text.parse().map_err(|e| format!("value {text:?}: {e}"))?;
    if v.is_infinite() {
        return Err(format!("value {text:?} overflows"));
    }
    Ok(v)
}

/// `name{k="v",...} value` with nothing after the value.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value after the name")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut s = after;
        loop {
            if let Some(after) = s.strip_prefix('}') {
                s = after;
                break;
            }
            if !labels.is_empty() {
                s = s
                    .strip_prefix(',')
                    .ok_or("expected ',' or '}' between labels")?;
            }
            let eq = s.find('=').ok_or("label without '='")?;
            let key = &s[..eq];
            if !is_label_name(key) {
                return Err(format!("invalid label name {key:?}"));
            }
            if labels.iter().any(|(k, _): &(String, String)| k == key) {
                return Err(format!("label {key:?} twice"));
            }
            s = s[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = s.char_indices();
            let end = loop {
                let (at, c) = chars.next().ok_or("unterminated label value")?;
                match c {
                    '"' => break at,
                    '\\' => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("invalid escape in label value: {other:?}")),
                    },
                    c => value.push(c),
                }
            };
            s = &s[end + 1..];
            labels.push((key.to_owned(), value));
        }
        rest = s;
    }
    let value_text = rest.strip_prefix(' ').ok_or("no space before the value")?;
    if value_text.contains(' ') {
        return Err("something after the value (a timestamp?)".into());
    }
    let value = parse_value(value_text)?;
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
        raw: value_text.to_owned(),
    })
}

// ------------------------------------------------------------- the oracle

use vitals::{Labels, Snapshot};

/// The families a rendering of `snapshot` must hold, by the rules the
/// renderer documents: counters, gauges, histograms, then plug-in samples,
/// each group by name; a family whose exposed names clash with an earlier
/// family's is left out whole; a series repeating an earlier one of its
/// family is left out; summaries expose the window quantiles (NaN when
/// empty) and the lifetime `_sum`/`_count`, bucketed histograms cumulative
/// buckets ending with `+Inf`.
pub fn expected(snapshot: &Snapshot, format: Format) -> Vec<Family> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let help_of = |name: &str| {
        snapshot
            .metadata
            .iter()
            .find(|m| &*m.name == name)
            .and_then(|m| m.help.clone())
    };
    let unit_of = |name: &str| {
        snapshot
            .metadata
            .iter()
            .find(|m| &*m.name == name)
            .and_then(|m| m.unit.clone())
    };
    // Runs of equal names, in sorted (stable) order.
    fn runs<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<Vec<&T>> {
        let mut sorted: Vec<&T> = items.iter().collect();
        sorted.sort_by(|a, b| name(a).cmp(name(b)));
        let mut runs: Vec<Vec<&T>> = Vec::new();
        for item in sorted {
            match runs.last_mut() {
                Some(run) if name(run[0]) == name(item) => run.push(item),
                _ => runs.push(vec![item]),
            }
        }
        runs
    }
    let mut claim = |base: &str, suffixes: &[&str]| -> bool {
        let names: Vec<String> = suffixes.iter().map(|s| format!("{base}{s}")).collect();
        if names.iter().any(|n| taken.contains(n)) {
            return false;
        }
        taken.extend(names);
        true
    };
    let family_name = |base: &str, kind: &str| match (format, kind) {
        (Format::Prometheus, "counter") => format!("{base}_total"),
        _ => base.to_owned(),
    };
    let om_unit = |base: &str, unit: Option<String>| match format {
        Format::OpenMetrics => unit.filter(|u| {
            base.strip_suffix(u.as_str())
                .is_some_and(|rest| rest.ends_with('_'))
        }),
        Format::Prometheus => None,
    };
    fn dedupe<'a, T>(run: &[&'a T], labels: impl Fn(&T) -> &Labels) -> Vec<&'a T> {
        let mut seen: Vec<&Labels> = Vec::new();
        let mut out = Vec::new();
        for item in run {
            let l = labels(item);
            if !seen.contains(&l) {
                seen.push(l);
                out.push(*item);
            }
        }
        out
    }
    let plain =
        |name: String, labels: &Labels, extra: Option<(&str, String)>, value: f64, raw: String| {
            let mut l: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            if let Some((k, v)) = extra {
                l.push((k.to_owned(), v));
            }
            Sample {
                name,
                labels: l,
                value,
                raw,
            }
        };
    const COUNTER: &[&str] = &["", "_total", "_created"];

    for run in runs(&snapshot.counters, |c| &c.name) {
        let base = counter_base(&run[0].name);
        if !claim(base, COUNTER) {
            continue;
        }
        let samples = dedupe(&run, |c| &c.labels)
            .into_iter()
            .map(|c| {
                plain(
                    format!("{base}_total"),
                    &c.labels,
                    None,
                    c.value.as_f64(),
                    match c.value {
                        vitals::snapshot::CounterValue::Int(v) => v.to_string(),
                        vitals::snapshot::CounterValue::Float(_) => String::new(),
                    },
                )
            })
            .collect();
        out.push(Family {
            name: family_name(base, "counter"),
            kind: "counter".into(),
            help: help_of(&run[0].name),
            unit: om_unit(base, unit_of(&run[0].name)),
            samples,
        });
    }
    for run in runs(&snapshot.gauges, |g| &g.name) {
        let base: &str = &run[0].name;
        if !claim(base, &[""]) {
            continue;
        }
        let samples = dedupe(&run, |g| &g.labels)
            .into_iter()
            .map(|g| plain(base.to_owned(), &g.labels, None, g.value, String::new()))
            .collect();
        out.push(Family {
            name: base.to_owned(),
            kind: "gauge".into(),
            help: help_of(base),
            unit: om_unit(base, unit_of(base)),
            samples,
        });
    }
    for run in runs(&snapshot.histograms, |h| &h.name) {
        let base: &str = &run[0].name;
        let bucketed = run[0].summary.buckets.is_some();
        let suffixes: &[&str] = if bucketed {
            &["", "_bucket", "_sum", "_count", "_created"]
        } else {
            &["", "_sum", "_count", "_created"]
        };
        if !claim(base, suffixes) {
            continue;
        }
        let mut samples = Vec::new();
        for h in dedupe(&run, |h| &h.labels) {
            let s = &h.summary;
            if bucketed {
                let (bounds, cumulative, count) = match &s.buckets {
                    Some(b) => (b.bounds.clone(), b.cumulative.clone(), b.count),
                    None => (Vec::new(), Vec::new(), s.lifetime.count),
                };
                let mut last = 0u64;
                for (b, c) in bounds.iter().zip(&cumulative) {
                    last = last.max(*c).min(count);
                    samples.push(plain(
                        format!("{base}_bucket"),
                        &h.labels,
                        Some(("le", format!("{b:?}"))),
                        last as f64,
                        last.to_string(),
                    ));
                }
                samples.push(plain(
                    format!("{base}_bucket"),
                    &h.labels,
                    Some(("le", "+Inf".into())),
                    count as f64,
                    count.to_string(),
                ));
                samples.push(plain(
                    format!("{base}_sum"),
                    &h.labels,
                    None,
                    s.lifetime.sum,
                    String::new(),
                ));
                samples.push(plain(
                    format!("{base}_count"),
                    &h.labels,
                    None,
                    count as f64,
                    count.to_string(),
                ));
            } else {
                for level in vitals::snapshot::Quantiles::LEVELS {
                    let v = s
                        .window
                        .quantiles
                        .and_then(|q| q.get(level))
                        .unwrap_or(f64::NAN);
                    samples.push(plain(
                        base.to_owned(),
                        &h.labels,
                        Some(("quantile", format!("{level:?}"))),
                        v,
                        String::new(),
                    ));
                }
                samples.push(plain(
                    format!("{base}_sum"),
                    &h.labels,
                    None,
                    s.lifetime.sum,
                    String::new(),
                ));
                let n = s.lifetime.count;
                samples.push(plain(
                    format!("{base}_count"),
                    &h.labels,
                    None,
                    n as f64,
                    n.to_string(),
                ));
            }
        }
        out.push(Family {
            name: base.to_owned(),
            kind: if bucketed { "histogram" } else { "summary" }.into(),
            help: help_of(base),
            unit: om_unit(base, unit_of(base)),
            samples,
        });
    }
    out
}

fn counter_base(name: &str) -> &str {
    match name.strip_suffix("_total") {
        Some(base) if !base.is_empty() => base,
        _ => name,
    }
}

fn same_value(a: &Sample, b: &Sample) -> bool {
    if !b.raw.is_empty() {
        return a.raw == b.raw;
    }
    (a.value.is_nan() && b.value.is_nan()) || a.value.to_bits() == b.value.to_bits()
}

fn same_labels(a: &Sample, b: &Sample) -> bool {
    a.labels.len() == b.labels.len()
        && a.labels.iter().zip(&b.labels).all(|((ka, va), (kb, vb))| {
            ka == kb
                && if ka == "le" || ka == "quantile" {
                    parse_value(va).ok().map(f64::to_bits) == parse_value(vb).ok().map(f64::to_bits)
                } else {
                    va == vb
                }
        })
}

/// Parsed families against expected ones: same families in the same order,
/// same metadata, same samples (label values unescaped, numbers exact).
pub fn compare(parsed: &[Family], expected: &[Family]) -> Result<(), String> {
    let names = |f: &[Family]| f.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    if names(parsed) != names(expected) {
        return Err(format!(
            "families differ:\n  written  {:?}\n  expected {:?}",
            names(parsed),
            names(expected)
        ));
    }
    for (p, e) in parsed.iter().zip(expected) {
        if p.kind != e.kind || p.help != e.help || p.unit != e.unit {
            return Err(format!(
                "family {:?}: written ({}, {:?}, {:?}), expected ({}, {:?}, {:?})",
                p.name, p.kind, p.help, p.unit, e.kind, e.help, e.unit
            ));
        }
        if p.samples.len() != e.samples.len() {
            return Err(format!(
                "family {:?}: {} samples written, {} expected",
                p.name,
                p.samples.len(),
                e.samples.len()
            ));
        }
        for (ps, es) in p.samples.iter().zip(&e.samples) {
            if ps.name != es.name || !same_labels(ps, es) || !same_value(ps, es) {
                return Err(format!(
                    "family {:?}: sample written {ps:?}, expected {es:?}",
                    p.name
                ));
            }
        }
    }
    Ok(())
}

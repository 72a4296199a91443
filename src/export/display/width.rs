//! Fitting text into terminal columns: widths, shortening with `…`,
//! padding.

use std::borrow::Cow;

/// The columns `text` takes on a terminal: two for wide characters
/// (CJK, Hangul, full-width forms, most emoji), none for combining marks
/// and zero-width characters, one for the rest.
///
/// ```
/// use vitals::export::display::display_width;
/// assert_eq!(display_width("abc"), 3);
/// assert_eq!(display_width("µs"), 2);
/// assert_eq!(display_width("東京"), 4);
/// ```
pub fn display_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// `text` cut to at most `width` columns, with `…` where it was cut.
///
/// A series name (`name{key="value",…}`, as [`series_name`](super::series_name)
/// writes it) keeps what tells series apart, its label values: first the
/// metric name alone is cut at its end (to no fewer than 8 columns); if
/// that is not enough, the label keys are left out
/// (`name{/api/orders,GET,5xx}`) and the name and the longest values are
/// cut to one common length (values in their middle, keeping their ends,
/// to no fewer than 5 columns). Other text, or a series that cannot fit
/// even so, loses its end.
///
/// ```
/// use vitals::export::display::{display_width, shorten};
///
/// assert_eq!(shorten("abcdef", 4), "abc…");
/// assert_eq!(shorten("abc", 4), "abc");
/// let s = shorten(r#"api_request_duration_seconds{endpoint="/api/orders"}"#, 34);
/// assert_eq!(s, r#"api_reque…{endpoint="/api/orders"}"#);
/// let s = shorten(r#"http_requests_total{method="GET",route="/api/v1/orders/items"}"#, 50);
/// assert_eq!(s, "http_requests_total{GET,/api/v1/orders/items}");
/// let s = shorten(r#"http_requests_total{method="GET",route="/api/v1/orders/items"}"#, 36);
/// assert_eq!(s, "http_requests_…{GET,/api…ders/items}");
/// assert_eq!(display_width(&s), 36);
/// let s = shorten(r#"api_requests_total{endpoint="/api/orders",method="GET",status="5xx"}"#, 46);
/// assert_eq!(s, "api_requests_total{/api/orders,GET,5xx}");
/// ```
pub fn shorten(text: &str, width: usize) -> Cow<'_, str> {
    if display_width(text) <= width {
        return Cow::Borrowed(text);
    }
    if let Some((name, labels)) = parse_series(text) {
        let short = shorten_series(name, &labels, width, true)
            .or_else(|| shorten_series(name, &labels, width, false));
        if let Some(short) = short {
            return Cow::Owned(short);
        }
    }
    Cow::Owned(cut(text, width))
}

/// `name{k="v",…}` split into the name and the (still escaped) pairs.
fn parse_series(text: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let open = text.find('{')?;
    let mut rest = text.get(open + 1..)?.strip_suffix('}')?;
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let eq = rest.find("=\"")?;
        let body = &rest[eq + 2..];
        let mut escaped = false;
        let end = body.char_indices().find_map(|(i, c)| {
            let quote = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            quote.then_some(i)
        })?;
        labels.push((&rest[..eq], &body[..end]));
        rest = &body[end + 1..];
        if !rest.is_empty() {
            rest = rest.strip_prefix(',')?;
        }
    }
    Some((&text[..open], labels))
}

/// `keys`: with `key="…"` around each value, else the bare values.
fn shorten_series(name: &str, labels: &[(&str, &str)], width: usize, keys: bool) -> Option<String> {
    const MIN_NAME: usize = 8;
    // With their keys, label values are kept whole; without, cut to 5 at least.
    let min_value = if keys { usize::MAX } else { 5 };
    let per_key = |k: &str| if keys { display_width(k) + 3 } else { 0 };
    let fixed: usize =
        2 + labels.iter().map(|(k, _)| per_key(k)).sum::<usize>() + labels.len().saturating_sub(1);
    let name_width = display_width(name);
    let value_widths: Vec<usize> = labels.iter().map(|(_, v)| display_width(v)).collect();
    let total = |cap: usize| {
        fixed
            + name_width.min(cap.max(MIN_NAME))
            + value_widths
                .iter()
                .map(|w| (*w).min(cap.max(min_value)))
                .sum::<usize>()
    };
    // The largest common cap that fits: `total` grows with the cap.
    if total(0) > width {
        return None;
    }
    let (mut lo, mut hi) = (
        0,
        name_width.max(value_widths.iter().copied().max().unwrap_or(0)),
    );
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if total(mid) <= width {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    // Columns left under the cap go to the label values first, then the name.
    let mut slack = width - total(lo);
    let mut give = |full: usize, min: usize| {
        let w = full.min(lo.max(min));
        let extra = slack.min(full - w);
        slack -= extra;
        w + extra
    };
    let values: Vec<usize> = value_widths.iter().map(|w| give(*w, min_value)).collect();
    let mut out = String::new();
    out.push_str(&fit_end(name, give(name_width, MIN_NAME)));
    out.push('{');
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if keys {
            out.push_str(key);
            out.push_str("=\"");
        }
        out.push_str(&fit_middle(value, values[i]));
        if keys {
            out.push('"');
        }
    }
    out.push('}');
    (display_width(&out) <= width).then_some(out)
}

fn fit_end(text: &str, width: usize) -> Cow<'_, str> {
    if display_width(text) <= width {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(cut(text, width))
    }
}

/// `text` in `width` columns, its middle replaced by `…`: a third of
/// the room for the start, the rest for the end.
fn fit_middle(text: &str, width: usize) -> Cow<'_, str> {
    if display_width(text) <= width {
        return Cow::Borrowed(text);
    }
    let room = width.saturating_sub(1);
    let head_room = room / 3;
    let mut head = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + char_width(c) > head_room {
            break;
        }
        used += char_width(c);
        head.push(c);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut tail_used = 0;
    for c in text.chars().rev() {
        if used + tail_used + char_width(c) > room {
            break;
        }
        tail_used += char_width(c);
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    Cow::Owned(head)
}

/// `text` cut to `width - 1` columns or less, then `…`.
fn cut(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = char_width(c);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Appends `text` shortened to `width` and padded with spaces to exactly
/// `width` columns.
pub(crate) fn push_left(out: &mut String, text: &str, width: usize) {
    let text = shorten(text, width);
    out.push_str(&text);
    push_spaces(out, width.saturating_sub(display_width(&text)));
}

/// Appends `text` right-aligned in `width` columns (never cut).
pub(crate) fn push_right(out: &mut String, text: &str, width: usize) {
    push_spaces(out, width.saturating_sub(display_width(text)));
    out.push_str(text);
}

fn push_spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn char_width(c: char) -> usize {
    let u = u32::from(c);
    let zero = matches!(u, 0x0300..=0x036f | 0x200b..=0x200f | 0x20d0..=0x20ff | 0xfe00..=0xfe0f);
    let wide = matches!(
        u,
        0x1100..=0x115f
            | 0x2e80..=0x303e
            | 0x3041..=0x33ff
            | 0x3400..=0x4dbf
            | 0x4e00..=0x9fff
            | 0xa000..=0xa4cf
            | 0xac00..=0xd7a3
            | 0xf900..=0xfaff
            | 0xfe30..=0xfe4f
            | 0xff00..=0xff60
            | 0xffe0..=0xffe6
            | 0x1f300..=0x1f64f
            | 0x1f900..=0x1f9ff
            | 0x20000..=0x3fffd
    );
    if zero {
        0
    } else if wide {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortening_keeps_the_width() {
        for width in 0..30 {
            let s = shorten(r#"metric_name{label="value",other="x"}"#, width);
            assert!(display_width(&s) <= width, "{s} at {width}");
        }
        assert_eq!(shorten("東京東京", 5), "東京…");
        let mut out = String::new();
        push_left(&mut out, "東京", 6);
        assert_eq!((out.as_str(), display_width(&out)), ("東京  ", 6));
    }

    #[test]
    fn label_values_with_quotes_commas_and_braces_are_parsed_whole() {
        let text = r#"m{a="x\",y=\"z}",b="1,2"}"#;
        assert_eq!(
            parse_series(text),
            Some(("m", vec![("a", r#"x\",y=\"z}"#), ("b", "1,2")]))
        );
        for bad in ["m{", "m{a}", r#"m{a="x}"#, r#"m{a="x"b="y"}"#, "{}", "m}"] {
            assert!(display_width(&shorten(bad, 3)) <= 3, "{bad}");
        }
        assert_eq!(parse_series(r#"m{a="x"b="y"}"#), None);
        for width in 0..40 {
            let s = shorten(text, width);
            assert!(display_width(&s) <= width, "{s} at {width}");
        }
    }
}

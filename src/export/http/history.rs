//! `/api/query` answered from a [`History`] (feature `history`): the range
//! ends at its newest snapshot, the level and steps are the history's own
//! choice for `range / points`, and `merge` adds up the series' steps
//! (`sum`, `count` and `rate` only: the history's public queries do not
//! merge distributions across series).

use std::sync::Arc;

use super::api::{add_up, check_additive, Agg, Answer, ApiError, ApiQuery, MAX_SERIES};
use crate::error::Error;
use crate::history::{Aggregation, History, Query};

pub(super) fn answer(
    history: &Arc<History>,
    q: &ApiQuery,
    agg: Agg,
) -> Result<Answer, (u16, ApiError)> {
    check_additive(q, agg)?;
    let Some(end) = history.newest_unix_ms() else {
        return Ok(Answer {
            source: "history",
            step_ms: None,
            start_ms: 0,
            end_ms: 0,
            series: Vec::new(),
            total: 0,
        });
    };
    let start = end.saturating_sub(q.range_ms);
    let aggregation = match agg.as_str().parse::<Aggregation>() {
        Ok(a) => a,
        Err(e) => return Err((500, ApiError::new("history", None, e.to_string()))),
    };
    let mut query = Query::new(q.name.clone(), aggregation)
        .range(start, end.saturating_add(1))
        .max_points(q.points);
    for (key, value) in &q.labels {
        query = match value {
            Some(v) => query.label(key.clone(), v.clone()),
            None => query.any_label(key.clone()),
        };
    }
    let result = history.query(&query).map_err(|e| match e {
        Error::UnsupportedAggregation { .. } => (
            400,
            ApiError::new("unsupported_aggregation", Some("agg"), e.to_string()),
        ),
        other => (500, ApiError::new("history", None, other.to_string())),
    })?;
    let total = result.series.len();
    let series: Vec<_> = result
        .series
        .into_iter()
        .map(|s| {
            let points = s
                .points
                .iter()
                .map(|p| (p.timestamp_unix_ms, p.value))
                .collect();
            (s.labels, points)
        })
        .collect();
    let (series, total) = if q.merge {
        let merged = add_up(series);
        let n = merged.len();
        (merged, n)
    } else {
        (series.into_iter().take(MAX_SERIES).collect(), total)
    };
    Ok(Answer {
        source: "history",
        step_ms: result.step_ms,
        start_ms: start,
        end_ms: end,
        series,
        total,
    })
}

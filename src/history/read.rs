//! Reading the history: the latest value, the level for a range, queries.

use super::*;

impl History {
    /// The most recent reading of the series `name` with exactly `labels`.
    ///
    /// ```
    /// assert_eq!(vitals::history::History::new().latest("nope", &[]), None);
    /// ```
    pub fn latest(&self, name: &str, labels: &[(&str, &str)]) -> Option<Latest> {
        let inner = self.inner.lock();
        let family = inner.names.get(name)?;
        let series = family.series.get(&Labels::from_pairs(labels))?;
        let timestamp_unix_ms = series.previous_ms;
        Some(match series.previous.as_ref()? {
            Reading::Counter(total) => Latest::Counter {
                timestamp_unix_ms,
                total: *total,
            },
            Reading::Gauge(value) => Latest::Gauge {
                timestamp_unix_ms,
                value: *value,
            },
            Reading::Histogram { count, sum, .. } => Latest::Histogram {
                timestamp_unix_ms,
                count: *count,
                sum: *sum,
            },
        })
    }

    /// The level a query without one reads: the finest level whose retention
    /// still reaches back to `start_ms`, and, with a point limit, the
    /// coarsest of those whose interval is at most `range / max_points`
    /// (fewer intervals to merge). The hourly level when none reaches back.
    ///
    /// ```
    /// use vitals::history::{Aggregation, History, Level, Query};
    /// let history = History::new();
    /// let day = 86_400_000;
    /// let q = Query::new("x", Aggregation::Sum).range(10 * day, 11 * day).max_points(100);
    /// // 24 h / 100 points = 14.4 min: the 5-minute level, three intervals a point.
    /// assert_eq!(history.choose_level(&q, 11 * day), Level::FiveMinutes);
    /// ```
    pub fn choose_level(&self, query: &Query, now_ms: u64) -> Level {
        self.pick_level(query.start_ms, query, now_ms)
    }

    fn pick_level(&self, start_ms: u64, query: &Query, now_ms: u64) -> Level {
        let covering: Vec<Level> = Level::ALL
            .into_iter()
            .filter(|l| start_ms >= now_ms.saturating_sub(self.retention_ms[l.index()]))
            .collect();
        let Some(&finest) = covering.first() else {
            return Level::Hour;
        };
        match query.max_points {
            Some(n) if n > 0 => {
                let end = query.end_ms.min(now_ms.saturating_add(1));
                // The range as asked (not clipped to the data held): a
                // day in 24 points reads hours.
                let wanted = end.saturating_sub(query.start_ms.min(start_ms)) / n as u64;
                covering
                    .iter()
                    .rev()
                    .find(|l| l.interval_ms().unwrap_or(0) <= wanted)
                    .copied()
                    .unwrap_or(finest)
            }
            _ => finest,
        }
    }

    /// Runs a query: every series of `query.name` whose labels satisfy its
    /// conditions, reduced to steps of the chosen level.
    ///
    /// A missing name, or no series matching, gives an empty result, not an
    /// error. Errors: [`Error::InvalidTimeRange`] when `start >= end`,
    /// [`Error::ZeroMaxPoints`] for a point limit of 0, and
    /// [`Error::UnsupportedAggregation`] when the aggregation has no meaning
    /// for the metric's kind (see [`Aggregation`]).
    ///
    /// ```
    /// use vitals::history::{Aggregation, History, Query};
    /// let history = History::new();
    /// let err = history.query(&Query::new("x", Aggregation::Sum).range(10, 5)).unwrap_err();
    /// assert!(matches!(err, vitals::Error::InvalidTimeRange { .. }));
    /// ```
    pub fn query(&self, query: &Query) -> Result<QueryResult, Error> {
        query.validate()?;
        let mut inner = self.inner.lock();
        // Now is the newest snapshot, or after a reload the newest point.
        let now = inner
            .last
            .map(|(t, _)| t)
            .or(inner.floor)
            .unwrap_or(query.end_ms);
        // A range reaching back past the oldest snapshot is read from
        // there: "everything" is then the finest level that has it all.
        // (A millisecond before it: a snapshot on a boundary belongs to
        // the interval that ends there.)
        let start = query
            .start_ms
            .max(inner.first.map_or(0, |f| f.saturating_sub(1)));
        let level = query
            .level
            .unwrap_or_else(|| self.pick_level(start, query, now));
        let interval = level.interval_ms();
        // Steps start at the range's start rounded down to the level's
        // interval, so that `max_points` steps cover the range.
        let origin = start - start % interval.unwrap_or(1);
        let step = match query.max_points {
            Some(n) => {
                let end = query.end_ms.min(now.saturating_add(1)).max(start + 1);
                let range = end - origin;
                let base = interval.unwrap_or(1);
                let wanted = range.div_ceil(n as u64).max(base);
                // Whole intervals per step, so that steps merge intervals
                // exactly.
                let step = wanted.div_ceil(base).saturating_mul(base);
                (step > base || interval.is_some()).then_some(step)
            }
            None => interval,
        };
        let mut result = QueryResult {
            level,
            step_ms: step,
            aggregation: query.aggregation,
            series: Vec::new(),
        };
        let i = level.index();
        // Points evicted from memory but still within retention are read
        // from the level's files, with the store unlocked: ingestion goes
        // on meanwhile (a file read can take tens of milliseconds).
        let mut on_disk: HashMap<Labels, Vec<Point>> = HashMap::new();
        let mut disk_kind = None;
        // Whole segment files outlive the retention a little: the
        // retention is applied to their points here.
        let kept_from = now
            .saturating_sub(self.retention_ms[i])
            .saturating_sub(interval.unwrap_or(0));
        let from = query.start_ms.max(kept_from);
        // Only what left memory before its retention ended is read: up to
        // an interval past where memory starts (the slack of roll-ups).
        let until_for = |memory_from: u64| {
            query.end_ms.min(
                memory_from
                    .saturating_add(interval.unwrap_or(0))
                    .saturating_add(1),
            )
        };
        let memory_from = inner.memory_from[i];
        let reader = inner
            .disk
            .as_ref()
            .map(|d| Disk::new(d.dir().to_path_buf()));
        let mut read_disk = |reader: &Disk, from: u64, until: u64| -> Result<u64, Error> {
            if from >= until {
                return Ok(0);
            }
            reader.read(level, from, until, Some(&query.name), |p| {
                if query.selects(&p.labels) {
                    disk_kind.get_or_insert(p.agg.kind());
                    let (_, labels, point) = p.into_point();
                    on_disk.entry(labels).or_default().push(point);
                }
            })
        };
        let mut skipped = 0;
        let mut read_until = from;
        if let Some(reader) = &reader {
            if from < memory_from {
                drop(inner);
                read_until = until_for(memory_from);
                let read = read_disk(reader, from, read_until);
                inner = self.inner.lock();
                skipped += read?;
            }
        }
        let inner = &mut *inner;
        // Points that left memory while the files were read: read them now
        // (rarely anything: a minute's sweep must have run meanwhile).
        if let Some(reader) = &reader {
            let now_from = inner.memory_from[i];
            if now_from > memory_from && from < now_from {
                skipped += read_disk(reader, read_until.max(from), until_for(now_from))?;
            }
        }
        inner.stats.skipped_lines += skipped;
        // Steps are reduced in time order, and a file's lines need not be
        // (one edited by hand, or written by another program).
        for points in on_disk.values_mut() {
            points.sort_by_key(|p| p.t_ms);
        }
        let family = inner.names.get(query.name.as_str());
        let Some(kind) = family.map(|f| f.kind).or(disk_kind) else {
            return Ok(result);
        };
        if !query.aggregation.applies_to(kind) {
            return Err(Error::UnsupportedAggregation {
                aggregation: query.aggregation.as_str(),
                kind: kind.as_str(),
                name: query.name.clone(),
            });
        }
        let name: Arc<str> = inner
            .names
            .get_key_value(query.name.as_str())
            .map_or_else(|| query.name.as_str().into(), |(k, _)| k.clone());
        let mut selected: Vec<(&Labels, Option<&Series>)> = family
            .into_iter()
            .flat_map(|f| f.series.iter())
            .filter(|(labels, _)| query.selects(labels))
            .map(|(labels, s)| (labels, Some(s)))
            .collect();
        for labels in on_disk.keys() {
            if family.is_none_or(|f| !f.series.contains_key(labels)) {
                selected.push((labels, None));
            }
        }
        selected.sort_by(|a, b| a.0.cmp(b.0));
        let (start, end) = (query.start_ms, query.end_ms);
        let no_points = Column::default();
        for (labels, series) in selected {
            let open = series.map_or_else(Vec::new, |s| s.open_points(level));
            let stored = series.map_or(&no_points, |s| &s.levels[i]);
            let in_memory_from = stored
                .first_t()
                .or(open.first().map(|p| p.t_ms))
                .unwrap_or(u64::MAX);
            let disk = on_disk
                .get(labels)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter(|p| p.t_ms < in_memory_from)
                .cloned();
            // Memory may still hold points up to a minute past their
            // retention (the sweep lets them go): the retention applies here.
            let from = start.max(kept_from);
            let points = disk
                .chain(stored.iter_from(from))
                .chain(open)
                .take_while(|p| p.t_ms < end)
                .filter(|p| p.t_ms >= from);
            result.series.push(SeriesResult {
                name: name.clone(),
                labels: labels.clone(),
                kind,
                points: query::reduce(points, origin, step, query.aggregation),
            });
        }
        Ok(result)
    }
}

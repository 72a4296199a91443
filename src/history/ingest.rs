//! Taking snapshots in: the clock-jump rule, the series of each kind, replay.

use super::*;

impl History {
    /// Adds one snapshot: a raw point per series, merged into the open
    /// roll-up intervals; closes the intervals that ended before the
    /// snapshot and drops points past their level's retention (or resident
    /// span). With persistence, appends the finished points to the level
    /// files.
    ///
    /// Snapshots are taken in time order, and a clock that jumps costs at
    /// most the snapshots that left the timeline:
    ///
    /// - **Ahead.** A snapshot more than an hour (or four times the step
    ///   between the two newest accepted snapshots, when longer) after the
    ///   newest accepted one is held. If the next snapshot is newer still,
    ///   the clock did jump (or the program was stopped a while): both are
    ///   ingested, counted in [`HistoryStats::clock_jumps`]. Otherwise the
    ///   held one is dropped, counted in [`HistoryStats::jumps_dropped`],
    ///   and the next is judged by these rules. So one snapshot a year
    ///   ahead costs that snapshot, and a real jump costs nothing; a held
    ///   snapshot is in no query until the next one arrives.
    /// - **Back.** A snapshot not newer than the newest accepted one is
    ///   dropped, counted in [`HistoryStats::out_of_order`]. When three in
    ///   a row come back, each after the one before (by at most the bound
    ///   above) and from a process whose uptime did not go down, the clock
    ///   was stepped back: the third one moves the history to the new
    ///   timeline (counted in [`HistoryStats::clock_jumps`]). The points
    ///   at its time or later are removed, from memory and from the level
    ///   files; the counter increases and histogram values they held are
    ///   added to each series' next point, so sums over a range that spans
    ///   the step lose nothing (gauge readings at disowned times are
    ///   dropped). The two dropped snapshots lose only their resolution:
    ///   the next point counts from the last accepted reading.
    ///
    /// Snapshots of an earlier process (lower uptime: a replay of older
    /// files into a newer store) never move the history back.
    ///
    /// Ingestion reads no clock: replays, manual clocks and other
    /// machines' snapshots are rightly off the local clock, so the timeline
    /// is its own evidence. A reopened history judges the level files'
    /// newest lines, which it cannot see continued, with the wall clock as
    /// well: a newest line time further beyond both the next one and the
    /// wall clock than the bound above was written by a jump that nothing
    /// continued; it does not count, and its lines are removed
    /// ([`HistoryStats::future_lines`]).
    ///
    /// The only error is [`Error::Io`] from persistence; the snapshot is
    /// then still in memory. (If the level files cannot be cut back after a
    /// clock was stepped back, the history stays on its timeline and that
    /// snapshot is dropped; the next three behind try again.)
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let history = vitals::history::History::new();
    /// let snap = metrics.snapshot();
    /// history.ingest(&snap).unwrap();
    /// history.ingest(&snap).unwrap(); // the same time again: dropped
    /// assert_eq!(history.stats().out_of_order, 1);
    /// // A snapshot a year ahead is held; the next on the old timeline drops it.
    /// let mut ahead = snap.clone();
    /// ahead.timestamp_unix_ms += 365 * 86_400_000;
    /// history.ingest(&ahead).unwrap();
    /// let mut next = snap.clone();
    /// next.timestamp_unix_ms += 10_000;
    /// history.ingest(&next).unwrap();
    /// assert_eq!(history.stats().jumps_dropped, 1);
    /// assert_eq!(history.newest_unix_ms(), Some(next.timestamp_unix_ms));
    /// ```
    pub fn ingest(&self, snapshot: &Snapshot) -> Result<(), Error> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let newest = match (inner.last, inner.floor) {
            (Some((t, uptime)), _) => Some((t, Some(uptime))),
            (None, Some(floor)) => Some((floor, None)),
            (None, None) => None,
        };
        match inner.timeline.judge(newest, snapshot, &mut inner.stats) {
            Verdict::Accept => self.accept(inner, snapshot),
            Verdict::Hold | Verdict::Behind => Ok(()),
            Verdict::AcceptHeldFirst(held) => {
                let first = self.accept(inner, &held);
                let second = self.accept(inner, snapshot);
                first.and(second)
            }
            Verdict::SteppedBack => {
                self.rewind(inner, snapshot.timestamp_unix_ms)?;
                self.accept(inner, snapshot)
            }
        }
    }

    /// Ingests a snapshot newer than every one accepted.
    fn accept(&self, inner: &mut Inner, snapshot: &Snapshot) -> Result<(), Error> {
        let now = snapshot.timestamp_unix_ms;
        if inner.last.is_some_and(|(t, _)| now <= t) || inner.floor.is_some_and(|t| now <= t) {
            // The rule let nothing older through; stay safe all the same.
            inner.stats.out_of_order += 1;
            return Ok(());
        }
        // A process that restarted: its uptime went down or, for the first
        // snapshot after a reload, began after the newest point on disk.
        // Its totals then started from zero.
        let restarted = match inner.last {
            Some((_, uptime)) => snapshot.uptime_seconds < uptime,
            None => inner
                .floor
                .is_some_and(|f| snapshot.uptime_seconds * 1000.0 < now.saturating_sub(f) as f64),
        };
        if inner.last.is_none() && inner.floor.is_some() {
            // The first snapshot after a reload: if its process restarted,
            // every reloaded series it reports, now or later, counts from
            // zero.
            inner.reloaded_counts_from_zero = restarted;
        }
        let previous_snapshot = inner
            .last
            .map(|(t, _)| t)
            .or(inner.floor.filter(|_| restarted));
        inner.timeline.step = inner.last.map(|(t, _)| now - t);
        inner.last = Some((now, snapshot.uptime_seconds));
        inner.first.get_or_insert(now);
        inner.stats.snapshots += 1;
        let cx = Ingest {
            reloaded_counts_from_zero: inner.reloaded_counts_from_zero,
            horizon: inner.resident_now.map(|r| now.saturating_sub(r)),
            now,
            restarted,
            previous_snapshot,
        };
        // Series expire their own points as they report.
        Self::note_horizon(inner, &cx.horizon);
        let counters = snapshot
            .counters
            .iter()
            .map(|c| (&c.name, &c.labels, Incoming::Counter(c.value)));
        cx.add_all(inner, counters);
        let gauges = snapshot
            .gauges
            .iter()
            .map(|g| (&g.name, &g.labels, Incoming::Gauge(g.value)));
        cx.add_all(inner, gauges);
        let histograms = snapshot.histograms.iter().map(|h| {
            let life = &h.summary.lifetime;
            // Checked for order where they are read (`advance`): what the
            // collector wrote is in order, other input is sorted (a copy).
            // Buckets downscaled below scale 6 (only hand-made or exported
            // snapshots have them) cannot be kept at the store's scale.
            let buckets = h
                .summary
                .lifetime_buckets
                .as_deref()
                .filter(|b| b.scale == crate::layout::SCALE)
                .map(Cow::Borrowed);
            let reading = Incoming::Histogram {
                count: life.count,
                sum: life.sum,
                buckets,
            };
            (&h.name, &h.labels, reading)
        });
        cx.add_all(inner, histograms);
        // Series that reported closed their own finished intervals and let
        // go of their expired points above. The sweep over every series
        // (intervals of series that did not report, their expired points,
        // series to forget) runs when a minute ends, the finest roll-up
        // interval.
        let minute = Level::Minute.interval_ms().unwrap_or(1);
        let sweep = previous_snapshot
            .is_none_or(|t| t.saturating_sub(1) / minute != now.saturating_sub(1) / minute);
        if sweep {
            self.close_and_expire(inner, now);
            if let Some(limit) = self.memory_limit {
                self.hold_to(limit, inner, now);
            }
        }
        match &mut inner.disk {
            Some(disk) => disk.flush(now, &self.retention_ms),
            None => Ok(()),
        }
    }

    /// Ingests snapshots in order (a [`JsonLinesReader`]
    /// over an exporter's files, rotated sets included, which skips torn
    /// lines) and returns how many were read. Stops at the first error
    /// the iterator yields.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let history = vitals::history::History::new();
    /// let read = history.replay([Ok(metrics.snapshot())]).unwrap();
    /// assert_eq!(read, 1);
    /// ```
    pub fn replay<I>(&self, snapshots: I) -> Result<u64, Error>
    where
        I: IntoIterator<Item = Result<Snapshot, Error>>,
    {
        let mut read = 0;
        for snapshot in snapshots {
            self.ingest(&snapshot?)?;
            read += 1;
        }
        Ok(read)
    }

    /// Rebuilds history from an exporter's JSON-Lines files: `path` and its
    /// rotated siblings, oldest first (see
    /// [`JsonLinesReader::open_rotated`]). Torn or unreadable lines are
    /// skipped and listed in the report.
    ///
    /// ```
    /// use std::io::Write;
    /// let dir = std::env::temp_dir().join(format!("vitals-doc-replay-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("metrics.jsonl");
    /// let metrics = vitals::MetricsCollector::new();
    /// let mut line = Vec::new();
    /// vitals::export::JsonLinesExporter::encode_line(&metrics.snapshot(), &mut line).unwrap();
    /// let mut file = std::fs::File::create(&path).unwrap();
    /// file.write_all(&line).unwrap();
    /// file.write_all(b"{\"schema_version\":2,\"timest").unwrap(); // torn
    /// let history = vitals::history::History::new();
    /// let report = history.replay_files(&path).unwrap();
    /// assert_eq!((report.snapshots, report.skipped.len()), (1, 1));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// ```
    pub fn replay_files(&self, path: impl AsRef<Path>) -> Result<ReplayReport, Error> {
        let mut reader = JsonLinesReader::open_rotated(path)?;
        let snapshots = self.replay(&mut reader)?;
        Ok(ReplayReport {
            snapshots,
            skipped: reader.skipped().to_vec(),
        })
    }
}

/// One snapshot's ingestion context.
struct Ingest {
    now: u64,
    /// Reloaded series without a reading yet count from zero.
    reloaded_counts_from_zero: bool,
    /// Per level, the time before which points leave memory.
    horizon: [u64; 4],
    restarted: bool,
    previous_snapshot: Option<u64>,
}

impl Ingest {
    /// Adds the samples of one kind. A snapshot lists the series of a name
    /// together: the family is looked up once per run of one name.
    fn add_all<'a>(
        &self,
        inner: &mut Inner,
        samples: impl Iterator<Item = (&'a Arc<str>, &'a Labels, Incoming<'a>)>,
    ) {
        let Inner {
            names, stats, disk, ..
        } = inner;
        let mut run: Option<(&Arc<str>, &mut Family)> = None;
        for (name, labels, reading) in samples {
            let kind = reading.kind();
            let family = match run {
                Some((n, family)) if Arc::ptr_eq(n, name) || **n == **name => family,
                _ => match names.get_mut(&**name) {
                    Some(f) => f,
                    None => names.entry(name.clone()).or_insert(Family {
                        kind,
                        series: FastMap::default(),
                    }),
                },
            };
            if family.kind == kind {
                self.add(family, disk.as_mut(), name, labels, reading);
            } else {
                stats.kind_conflicts += 1;
            }
            run = Some((name, family));
        }
    }

    fn add(
        &self,
        family: &mut Family,
        disk: Option<&mut Disk>,
        name: &str,
        labels: &Labels,
        reading: Incoming<'_>,
    ) {
        let (series, created) = match family.series.get_mut(labels) {
            Some(s) => (s, false),
            None => (
                family.series.entry(labels.clone()).or_insert(Series {
                    // A series first seen after an earlier snapshot was created
                    // since (or, after a restart, counts from zero): all of its
                    // total is new. In the first snapshot it is a baseline.
                    previous: self.previous_snapshot.map(|_| reading.zero()),
                    previous_ms: self.previous_snapshot.unwrap_or(self.now),
                    levels: Default::default(),
                    open: Default::default(),
                    carry: None,
                }),
                true,
            ),
        };
        // A new series starts from zero (unless in the first snapshot): it
        // went through no reset. A series reloaded from disk has no reading
        // yet: if the process restarted since, its total went back to zero
        // (a reset) and all of it is new; otherwise it is a baseline.
        let mut restarted = self.restarted && !created;
        if series.previous.is_none() && self.reloaded_counts_from_zero {
            series.previous = Some(reading.zero());
            restarted = true;
        }
        let covered_ms = self.now.saturating_sub(series.previous_ms);
        series.previous_ms = self.now;
        let agg = match (&mut series.previous, reading) {
            (previous, Incoming::Gauge(v)) => {
                *previous = Some(Reading::Gauge(v));
                (!v.is_nan()).then(|| Aggregate::gauge(v))
            }
            (Some(Reading::Counter(before)), Incoming::Counter(now)) => {
                let went_down = match (*before, now) {
                    (CounterValue::Int(b), CounterValue::Int(n)) => n < b,
                    (b, n) => n.as_f64() < b.as_f64(),
                };
                let agg = if restarted || went_down {
                    Aggregate::Counter {
                        increase: now,
                        resets: 1,
                    }
                } else {
                    let increase = match (*before, now) {
                        (CounterValue::Int(b), CounterValue::Int(n)) => CounterValue::Int(n - b),
                        (b, n) => CounterValue::Float(n.as_f64() - b.as_f64()),
                    };
                    Aggregate::Counter {
                        increase,
                        resets: 0,
                    }
                };
                *before = now;
                Some(agg)
            }
            (
                Some(Reading::Histogram {
                    count: c0,
                    sum: s0,
                    buckets: b0,
                    in_buckets,
                }),
                Incoming::Histogram {
                    count: c1,
                    sum: s1,
                    buckets: b1,
                },
            ) => {
                let reset = restarted || c1 < *c0;
                let (count, sum) = if reset {
                    (c1, s1)
                } else {
                    (c1 - *c0, (s1 - *s0).max(0.0))
                };
                (*c0, *s0) = (c1, s1);
                let dist = match (b1, b0.as_mut()) {
                    (None, _) => {
                        *b0 = None;
                        None
                    }
                    (Some(now), Some(before)) => {
                        let (added, now) = match advance(before, in_buckets, &now) {
                            Advanced::Unordered => {
                                let mut sorted = now.into_owned();
                                sorted.normalize();
                                (advance(before, in_buckets, &sorted), Cow::Owned(sorted))
                            }
                            added => (added, now),
                        };
                        match added {
                            _ if reset => Some(now.into_owned()),
                            Advanced::Added(d) => Some(d),
                            Advanced::Reset | Advanced::Unordered => None,
                        }
                    }
                    (Some(now), None) => {
                        let now = normalized(now);
                        let dense = Dense::from(&*now);
                        *in_buckets = dense.total();
                        *b0 = Some(dense);
                        reset.then(|| now.into_owned())
                    }
                };
                Some(Aggregate::Histogram {
                    count,
                    sum,
                    buckets: dist.map(Dist::Open),
                })
            }
            // No earlier reading (or one of another kind): a baseline only.
            (previous, reading) => {
                *previous = Some(match reading {
                    Incoming::Counter(v) => Reading::Counter(v),
                    Incoming::Gauge(v) => Reading::Gauge(v),
                    Incoming::Histogram {
                        count,
                        sum,
                        buckets,
                    } => {
                        // Dense counts add repeated buckets up and ignore
                        // the order (and buckets past the layout).
                        let buckets = buckets.map(|b| Dense::from(&*b));
                        Reading::Histogram {
                            count,
                            sum,
                            in_buckets: buckets.as_ref().map_or(0, Dense::total),
                            buckets,
                        }
                    }
                });
                None
            }
        };
        let Some(agg) = agg else { return };
        let mut point = Point {
            t_ms: self.now,
            covered_ms,
            agg,
        };
        // Counts at times a clock stepped back disowned come with the
        // first point after it.
        if let Some(mut carried) = series.carry.take() {
            carried.merge(&point);
            point = Point {
                t_ms: self.now,
                ..*carried
            };
        }
        let mut sink = Sink { disk, name, labels };
        sink.push(Level::Raw, &point);
        series.levels[0].push(&point);
        let minute = Level::Minute.interval_ms().unwrap_or(1);
        let start = self.now.saturating_sub(1) / minute * minute;
        match &mut series.open[0] {
            Some(open) if open.t_ms == start => open.merge(&point),
            _ => {
                series.roll(self.now, &mut sink);
                series.open[0] = Some(Point {
                    t_ms: start,
                    ..point
                });
            }
        }
        // The raw level lets go of its old points here (its chunk is at
        // hand); the roll-up levels and open intervals, which lose at most
        // a point an interval, when the minute's sweep passes.
        series.levels[0].expire_before(self.horizon[0]);
    }
}

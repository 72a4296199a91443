// Opens the live page of a running vitals HTTP endpoint in headless
// Chromium and checks what a person would see:
//  * it loads with no console error, page error, failed request, or
//    request to anywhere but the endpoint itself;
//  * every chart draws a p50 and a p99 line with data;
//  * every value shown in the counter and gauge tables, the status line,
//    the charts' headings and the plug-in table equals the one in the
//    /metrics.json response that the page rendered (parsed back from the
//    text in its unit, within the rounding of three significant digits);
// then saves a full-page screenshot.
//
// usage: node check_page.mjs URL SCREENSHOT [user:password] [history|recent]
// (the last: where the charts' /api/query answers must come from).
// CHROMIUM overrides the browser (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const [base, shot, credential, source = "recent"] = process.argv.slice(2);
if (!base || !shot) {
  console.error("usage: node check_page.mjs URL SCREENSHOT [user:password]");
  process.exit(2);
}
const origin = new URL(base).origin;
const failures = [];
const fail = (msg) => failures.push(msg);

// ---- parsing what the page shows back into numbers ---------------------
const SCALE = {
  B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, PiB: 2 ** 50,
  "µs": 1e-6, ms: 1e-3, s: 1, min: 60, h: 3600, d: 86400, "%": 0.01, "°C": 1,
};
function parseShown(text, unitWord) {
  const t = text.trim();
  if (t === "–") return { value: null };
  const age = t.match(/^(?:(\d+)d )?(?:(\d+)h ?)?(?:(\d+)m ?)?(?:(\d+)s)?$/);
  if (age && t !== "") {
    const [, d, h, m, s] = age.map((x) => (x === undefined ? 0 : +x));
    // An age shows its two largest units: the rest is cut off.
    const unit = d ? 3600 : h ? 60 : 1;
    return { value: d * 86400 + h * 3600 + m * 60 + s, abs: unit };
  }
  const date = t.match(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC/);
  if (date) return { value: Date.parse(date[1].replace(" ", "T") + "Z") / 1000, abs: 1 };
  const m = t.match(/^(≤ )?(-?[\d,]*\.?\d+(?:e[-+]?\d+)?)(?: ?(\S+))?$/);
  if (!m) return { error: `cannot read ${JSON.stringify(t)}` };
  const digits = m[2].replace(/,/g, "");
  const percent = unitWord === "percent";
  const unit = m[3] || "";
  const scale = unit === "%" && percent ? 1 : SCALE[unit] ?? 1;
  const decimals = (digits.split(".")[1] || "").length;
  // Half a unit in the last place shown.
  const abs = 0.5 * 10 ** -decimals * scale;
  return { value: +digits * scale, abs: abs * 1.0001 + 1e-300, unit };
}
function close(shown, want, what, unitWord) {
  const p = parseShown(shown, unitWord);
  if (p.error) return fail(`${what}: ${p.error}`);
  if (want === null || want === undefined) {
    if (p.value !== null) fail(`${what}: shows ${shown}, the snapshot has none`);
    return;
  }
  if (p.value === null) return fail(`${what}: shows – for ${want}`);
  const err = Math.abs(p.value - want);
  // Integers grouped with commas are exact; others within their rounding
  // (values ≥ 1000 without a unit are rounded to whole numbers).
  if (err > p.abs && err > Math.abs(want) * 0.005 + 1e-12) {
    fail(`${what}: shows ${shown} (${p.value}), the snapshot has ${want}`);
  }
}
const labelsKey = (l) => JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));

// ---- the browser --------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({
  viewport: { width: 1400, height: 1000 },
  httpCredentials: credential
    ? { username: credential.split(":")[0], password: credential.split(":").slice(1).join(":") }
    : undefined,
});
const page = await context.newPage();
const snapshots = new Map(); // timestamp -> /metrics.json body the page got
const mergedP99 = []; // last points of the merged p99 answers the page got
const sources = new Set(); // where the /api/query answers came from
page.on("console", (m) => {
  if (m.type() === "error" || m.type() === "warning") fail(`console ${m.type()}: ${m.text()}`);
});
page.on("pageerror", (e) => fail(`page error: ${e.message}`));
page.on("requestfailed", (r) => fail(`request failed: ${r.url()} ${r.failure()?.errorText}`));
page.on("request", (r) => {
  if (new URL(r.url()).origin !== origin) fail(`request outside the endpoint: ${r.url()}`);
});
page.on("response", async (r) => {
  if (r.status() >= 400) fail(`${r.status()} for ${r.url()}`);
  const u = new URL(r.url());
  if (u.pathname === "/api/query" && u.searchParams.get("merge") === "true" && u.searchParams.get("agg") === "p99") {
    try {
      const body = await r.json();
      const pts = body.series[0]?.points || [];
      if (pts.length) mergedP99.push(pts[pts.length - 1][1]);
    } catch (e) {
      /* as below */
    }
  }
  if (u.pathname === "/api/query") {
    try {
      const body = await r.json();
      if (body.source && body.source !== source) fail(`${r.url()} answered from ${body.source}, not ${source}`);
      else if (body.source) sources.add(body.source);
    } catch (e) {
      /* as below */
    }
  }
  if (u.pathname === "/metrics.json") {
    try {
      const body = await r.json();
      snapshots.set(String(body.timestamp_unix_ms), body);
    } catch (e) {
      /* a response still in flight when the page closes */
    }
  }
});

const url = new URL("/?range=2m&refresh=1", base).toString();
const response = await page.goto(url, { waitUntil: "load" });
if (!response || response.status() !== 200) fail(`GET / answered ${response && response.status()}`);
const html = await response.text();
if (/(src|href)=["']?https?:/i.test(html)) fail("the page refers to an external resource");
console.log(`page: ${html.length} bytes`);

// Wait until every chart has lines of at least three points.
try {
  await page.waitForFunction(
    () => {
      const charts = [...document.querySelectorAll(".chart")];
      return (
        window.vitalsPage.renders >= 3 &&
        charts.length > 0 &&
        charts.every((c) => {
          const lines = [...c.querySelectorAll("polyline")];
          return lines.length === 2 && lines.every((l) => +l.dataset.count >= 3);
        })
      );
    },
    null,
    { timeout: 90_000, polling: 250 },
  );
} catch (e) {
  fail(`charts never all drew data: ${e.message.split("\n")[0]}`);
}

// ---- read everything shown, at once -------------------------------------
const shown = await page.evaluate(() => {
  const rows = (id) => ({
    timestamp: document.getElementById(id).dataset.timestamp,
    rows: [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => ({
      name: tr.dataset.name,
      labels: JSON.parse(tr.dataset.labels || "{}"),
      value: tr.dataset.value,
      text: tr.querySelector('[data-field="value"]')?.textContent,
      plugin: tr.dataset.plugin,
      series: tr.querySelector("td.k")?.textContent,
      cells: [...tr.children].map((td) => td.textContent),
    })),
  });
  const status = document.getElementById("status");
  return {
    images: document.querySelectorAll("img").length,
    scripts: document.querySelectorAll("script").length,
    counters: rows("counters"),
    gauges: rows("gauges"),
    plugins: rows("plugins"),
    status: {
      timestamp: status.dataset.timestamp,
      parts: Object.fromEntries(
        [...status.querySelectorAll("[data-status]")].map((s) => [s.dataset.status, s.lastChild.textContent]),
      ),
    },
    charts: [...document.querySelectorAll(".chart")].map((c) => ({
      key: c.dataset.chart,
      name: c.dataset.name,
      labels: JSON.parse(c.dataset.labels),
      timestamp: c.dataset.timestamp,
      heading: c.querySelector(".v").textContent,
      lines: [...c.querySelectorAll("polyline")].map((l) => ({
        cls: l.dataset.line,
        count: +l.dataset.count,
        points: l.getAttribute("points"),
      })),
    })),
  };
});

function snapshotAt(timestamp, what) {
  const s = snapshots.get(timestamp);
  if (!s) fail(`${what}: no /metrics.json response with timestamp ${timestamp} was seen`);
  return s;
}

let checked = 0;
for (const table of ["counters", "gauges"]) {
  const snap = snapshotAt(shown[table].timestamp, table);
  if (!snap) continue;
  if (!shown[table].rows.length) fail(`${table}: no rows`);
  for (const row of shown[table].rows) {
    const series = snap[table].find((s) => s.name === row.name && labelsKey(s.labels) === labelsKey(row.labels));
    const what = `${table} ${row.name}${JSON.stringify(row.labels)}`;
    const unitWord =
      snap.metadata.find((m) => m.name === row.name)?.unit ||
      (row.name.replace(/_total$/, "").match(/_(percent)$/) || [])[1];
    if (!series) {
      fail(`${what}: not in the snapshot`);
      continue;
    }
    if (+row.value !== series.value) fail(`${what}: data-value ${row.value} != ${series.value}`);
    if (/(_timestamp_seconds|start_time_seconds|boot_time_seconds)$/.test(row.name)) {
      close(row.text.replace(/ \(.*\)$/, ""), series.value, what);
    } else {
      close(row.text, series.value, what, unitWord);
    }
    checked++;
    // A counter's rate, where the snapshot carries one.
    if (table === "counters" && series.rate && series.rate.span_seconds > 0) {
      close(row.cells[2].replace(/\/s$/, ""), series.rate.per_second, `${what} rate`);
      checked++;
    }
  }
}

// A hostile label value (the example has one): control characters shown
// escaped, markup shown as text and never made into elements.
const hostile = [...shown.counters.rows, ...shown.gauges.rows].find((r) => /\[31m/.test(JSON.stringify(r.labels)));
if (!hostile) fail("the example's hostile label is not shown");
else {
  if (/[\u0000-\u001f\u007f-\u009f]/.test(hostile.series)) fail(`a control character shown raw: ${JSON.stringify(hostile.series)}`);
  if (!hostile.series.includes("\\u001b[31m<img src=x onerror=alert(1)>")) fail(`hostile label shown as ${JSON.stringify(hostile.series)}`);
  else checked++;
}
if (shown.images !== 0 || shown.scripts !== 1) fail(`markup made it into the page: ${shown.images} img, ${shown.scripts} script`);

const statusSnap = snapshotAt(shown.status.timestamp, "status line");
if (statusSnap) {
  const gauge = (n) => statusSnap.gauges.find((g) => g.name === n && !Object.keys(g.labels).length)?.value;
  const parts = shown.status.parts;
  for (const [id, name, unitWord] of [
    ["mem", "process_resident_memory_bytes"],
    ["cpu", "process_cpu_usage_percent", "percent"],
    ["machine-cpu", "system_cpu_usage_percent", "percent"],
  ]) {
    if (gauge(name) !== undefined) {
      if (parts[id] === undefined) fail(`status line: no ${id}`);
      else close(parts[id], gauge(name), `status ${id}`, unitWord);
      checked++;
    }
  }
  const rps = statusSnap.counters
    .filter((c) => c.name === "api_requests_total")
    .reduce((a, c) => a + (c.rate ? c.rate.per_second : 0), 0);
  if (statusSnap.counters.some((c) => c.name === "api_requests_total")) {
    if (parts.rps === undefined) fail("status line: no req/s");
    else close(parts.rps, rps, "status req/s");
    checked++;
  }
  for (const id of ["cpu", "p99"]) if (parts[id] === undefined) fail(`status line: no ${id}`);
  // The service-wide p99 is one the page was answered (merged series), or
  // without exponential buckets the highest p99 of the busiest histogram
  // in seconds.
  if (parts.p99 !== undefined && parts.p99.startsWith("≤")) {
    const byName = new Map();
    for (const h of statusSnap.histograms) {
      const unit = statusSnap.metadata.find((m) => m.name === h.name)?.unit || (h.name.match(/_seconds$/) ? "seconds" : null);
      if (unit === "seconds") byName.set(h.name, (byName.get(h.name) || 0) + h.summary.window.count);
    }
    const top = [...byName].sort((a, b) => b[1] - a[1])[0][0];
    const bound = Math.max(
      ...statusSnap.histograms.filter((h) => h.name === top && h.summary.window.quantiles).map((h) => h.summary.window.quantiles.p99),
    );
    close(parts.p99.slice(2), bound, "status p99 bound");
    if (mergedP99.length) fail("the page asked for merged quantiles the server cannot merge");
    checked++;
  } else if (parts.p99 !== undefined) {
    const shownP99 = parseShown(parts.p99);
    const match = mergedP99.some((v) => Math.abs(v - shownP99.value) <= Math.max(shownP99.abs, v * 0.005));
    if (!match) fail(`status p99 ${parts.p99} is none of the merged p99 answers ${mergedP99.slice(-5)}`);
    else checked++;
  }
  console.log("status line:", JSON.stringify(parts));
}

const pluginSnap = snapshotAt(shown.plugins.timestamp, "plug-ins");
if (pluginSnap) {
  for (const p of pluginSnap.plugins) {
    const row = shown.plugins.rows.find((r) => r.plugin === p.name);
    if (!row) fail(`plug-in ${p.name}: no row`);
    else if (row.cells[1] !== p.status.replace("_", " ")) fail(`plug-in ${p.name}: shows ${row.cells[1]}, is ${p.status}`);
    else checked++;
  }
}

if (!shown.charts.length) fail("no charts");
for (const c of shown.charts) {
  for (const l of c.lines) {
    const pts = (l.points || "").trim().split(/\s+/).filter(Boolean);
    if (l.count < 1 || pts.length < 2) fail(`chart ${c.key} ${l.cls}: empty`);
    if (pts.some((p) => !/^-?[\d.]+,-?[\d.]+$/.test(p))) fail(`chart ${c.key} ${l.cls}: bad points`);
  }
  const snap = snapshotAt(c.timestamp, `chart ${c.key}`);
  const h = snap?.histograms.find((x) => x.name === c.name && labelsKey(x.labels) === labelsKey(c.labels));
  const q = h?.summary.window.quantiles;
  const m = c.heading.match(/^p50 (.+?) · p99 (.+?) · /);
  if (!h) fail(`chart ${c.key}: not in the snapshot`);
  else if (q && m) {
    close(m[1], q.p50, `chart ${c.key} p50`);
    close(m[2], q.p99, `chart ${c.key} p99`);
    checked += 2;
  } else if (q) fail(`chart ${c.key}: heading ${c.heading} has no quantiles`);
}
console.log(`charts: ${shown.charts.map((c) => `${c.key} (${c.lines.map((l) => `${l.cls} ${l.count}`).join(", ")})`).join("; ")}`);

await page.screenshot({ path: shot, fullPage: true });
console.log(`screenshot: ${shot}`);
await browser.close();

if (checked < 10) fail(`only ${checked} values were compared`);
if (!sources.has(source)) fail(`no /api/query answer came from ${source}`);
if (failures.length) {
  console.log(`page check: ${failures.length} failure(s)`);
  for (const f of failures.slice(0, 50)) console.log("  " + f);
  process.exit(1);
}
console.log(`page check: ${checked} values equal the snapshot's, ${shown.charts.length} charts with data, no console errors`);

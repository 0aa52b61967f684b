/**
 * `<sluice-dashboard>`: a live view of a sluice run, fed by the `progress`
 * events of a Server-Sent Events stream (`toSSE(flow, { progressMs,
 * progress: "compact" })`, or the full `flow.stats()` shape). One ES module,
 * no build step, no dependencies: serve this file beside your SSE route.
 *
 * ```html
 * <script type="module" src="/sluice-dashboard.js"></script>
 * <sluice-dashboard src="/events" total="1000"></sluice-dashboard>
 * ```
 *
 * Attributes: `src` (the element opens an `EventSource` on it, and closes it
 * on the final `done` or `error` event and when removed from the page),
 * `total` (the number of input items, when known: a bar and an ETA).
 * Properties: `source` (listen to an `EventSource` the page already has
 * instead; the page keeps owning it), `snapshot` (the last decoded figures),
 * `update(data)` (feed one parsed `progress` event by hand).
 *
 * It shows the totals (in, out, failed, rate, elapsed, ETA), one lane per
 * stage (workers busy or idle, queued items or the forming batch, completed
 * calls, p50/p95), a latency chart (p50, p95, p99, max from reading an item
 * to its result leaving) and a sparkline of the output rate.
 *
 * The decoder below is the JavaScript twin of `lib/progress_wire.ts`
 * (`fromWire`); tests/progress_wire_test.ts checks that they agree.
 *
 * @module
 */

// ---- the compact progress shape (see lib/progress_wire.ts) -----------------

const RUN_FIGURES = 16;
const STAGE_FIGURES = 19;
const MASK_SLOTS = 52;
const KINDS = { map: "m", filter: "f", batch: "b", flatten: "x" };
const KIND_NAMES = { m: "map", f: "filter", b: "batch", x: "flatten" };

const fig = (x) =>
  !Number.isFinite(x) ? 0 : x >= 100 ? Math.round(x) : Math.round(x * 10) / 10;
const latencyFigures = (l) => [
  l.count,
  fig(l.p50),
  fig(l.p95),
  fig(l.p99),
  fig(l.max),
];
const latencyAt = (v, i) => ({
  count: v[i],
  p50: v[i + 1],
  p95: v[i + 2],
  p99: v[i + 3],
  max: v[i + 4],
});

/** The flat vector of a snapshot or of full `FlowStats`. */
function vectorOf(stats) {
  const v = [
    Math.round(stats.elapsedMs),
    stats.itemsIn,
    stats.itemsOut,
    stats.failed,
    stats.skipped,
    stats.filtered,
    stats.cancelled,
    stats.inFlight,
    stats.results,
    stats.running,
    stats.done ? 1 : 0,
    ...latencyFigures(stats.latency),
  ];
  for (const s of stats.stages) {
    let slots = 0;
    let mask = 0;
    if (typeof s.workers[0] === "boolean") {
      slots = s.workers.length;
      for (let i = 0; i < Math.min(slots, MASK_SLOTS); i++) {
        if (s.workers[i]) mask += 2 ** i;
      }
    } else {
      for (const w of s.workers) {
        slots = Math.max(slots, w.workerId + 1);
        if (w.state === "busy" && w.workerId < MASK_SLOTS) {
          mask += 2 ** w.workerId;
        }
      }
    }
    v.push(
      s.concurrency,
      s.queued,
      s.inFlight,
      s.busy,
      s.backingOff,
      s.completed,
      s.failed,
      s.skipped,
      s.retried,
      fig(s.throughput),
      ...latencyFigures(s.latency),
      fig(s.queueWait.p50),
      fig(s.queueWait.p95),
      slots,
      mask,
    );
  }
  return v;
}

function snapshotOf(names, kinds, v) {
  const stages = names.map((name, n) => {
    const i = RUN_FIGURES + n * STAGE_FIGURES;
    const slots = v[i + 17];
    const mask = v[i + 18];
    const workers = [];
    for (let w = 0; w < Math.min(slots, MASK_SLOTS); w++) {
      workers.push(Math.floor(mask / 2 ** w) % 2 === 1);
    }
    return {
      name,
      kind: KIND_NAMES[kinds[n]] ?? "map",
      concurrency: v[i],
      queued: v[i + 1],
      inFlight: v[i + 2],
      busy: v[i + 3],
      backingOff: v[i + 4],
      completed: v[i + 5],
      failed: v[i + 6],
      skipped: v[i + 7],
      retried: v[i + 8],
      throughput: v[i + 9],
      latency: latencyAt(v, i + 10),
      queueWait: { p50: v[i + 15], p95: v[i + 16] },
      workers,
    };
  });
  return {
    elapsedMs: v[0],
    itemsIn: v[1],
    itemsOut: v[2],
    failed: v[3],
    skipped: v[4],
    filtered: v[5],
    cancelled: v[6],
    inFlight: v[7],
    results: v[8],
    running: v[9],
    done: v[10] === 1,
    latency: latencyAt(v, 11),
    stages,
  };
}

/**
 * Decodes a compact progress event (parsed): a keyframe alone, a delta on
 * top of the previous snapshot. `undefined` for a delta with no previous.
 * @param {object} wire
 * @param {object} [previous]
 * @returns {object | undefined}
 */
export function fromWire(wire, previous) {
  if (typeof wire === "object" && wire !== null) {
    if (
      Array.isArray(wire.s) && typeof wire.k === "string" &&
      Array.isArray(wire.v) &&
      wire.v.length === RUN_FIGURES + wire.s.length * STAGE_FIGURES
    ) {
      return snapshotOf(wire.s, wire.k, wire.v);
    }
    if (Array.isArray(wire.d) && wire.d.length % 2 === 0) {
      if (!previous) return undefined;
      const v = vectorOf(previous);
      for (let i = 0; i < wire.d.length; i += 2) {
        const at = wire.d[i];
        if (!(Number.isInteger(at) && at >= 0 && at < v.length)) {
          return undefined;
        }
        v[at] = wire.d[i + 1];
      }
      return snapshotOf(
        previous.stages.map((s) => s.name),
        previous.stages.map((s) => KINDS[s.kind]).join(""),
        v,
      );
    }
  }
  throw new TypeError(
    "'wire' must be a progress keyframe ({ s, k, v }) or delta ({ d })",
  );
}

/**
 * The snapshot of full `flow.stats()` (the `"full"` progress events and the
 * final `done` event): the same figures, rounded the same way.
 * @param {object} stats
 * @returns {object}
 */
export function fromStats(stats) {
  return snapshotOf(
    stats.stages.map((s) => s.name),
    stats.stages.map((s) => KINDS[s.kind] ?? "m").join(""),
    vectorOf(stats),
  );
}

/**
 * Decodes the parsed data of a `progress` or `done` event of either shape.
 * @param {object} data
 * @param {object} [previous]
 * @returns {object | undefined}
 */
export function decodeProgress(data, previous) {
  if (data && Array.isArray(data.stages)) return fromStats(data);
  return fromWire(data, previous);
}

// ---- the element ------------------------------------------------------------

/** Output-rate samples kept for the sparkline. */
const SAMPLES = 60;
const SVG = "http://www.w3.org/2000/svg";

const STYLE = `
:host {
  display: block;
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--sluice-ink, #1d2430);
  --accent: var(--sluice-accent, #2b6cb0);
  --light: var(--sluice-accent-light, #b9d3f0);
  --line: var(--sluice-line, #e3e7ee);
  --muted: var(--sluice-muted, #6b7585);
  --bad: var(--sluice-bad, #c53030);
  --ok: var(--sluice-ok, #2f855a);
}
.card {
  background: var(--sluice-background, #fff);
  border: 1px solid var(--line);
  border-radius: 8px;
  padding: 10px 14px 12px;
}
.totals {
  display: flex;
  flex-wrap: wrap;
  gap: 2px 16px;
  align-items: baseline;
  font-variant-numeric: tabular-nums;
}
.totals b { font-weight: 600; }
.totals .state { margin-left: auto; color: var(--muted); }
:host([data-state="done"]) .state { color: var(--ok); }
:host([data-state="error"]) .state { color: var(--bad); }
.failed b.some { color: var(--bad); }
.bar {
  height: 6px;
  margin: 6px 0 2px;
  border-radius: 3px;
  background: var(--line);
  overflow: hidden;
}
.bar div { height: 100%; width: 0; background: var(--accent); }
.bar[hidden] { display: none; }
.lanes {
  display: grid;
  grid-template-columns: minmax(5em, auto) 1fr auto auto auto;
  gap: 4px 14px;
  align-items: center;
  margin: 10px 0 8px;
  font-variant-numeric: tabular-nums;
}
.lane { display: contents; }
.name { font-weight: 600; }
.name small { font-weight: 400; color: var(--muted); margin-left: 4px; }
.workers { display: flex; flex-wrap: wrap; gap: 2px; min-height: 12px; }
.workers i {
  width: 10px;
  height: 12px;
  border-radius: 2px;
  background: var(--line);
}
.workers i.busy { background: var(--accent); }
.workers .forming { color: var(--muted); }
.num { text-align: right; color: var(--muted); }
.num b { color: var(--sluice-ink, #1d2430); font-weight: 500; }
.lane.hot .name::after { content: " ◂ queue"; color: var(--bad); font-weight: 400; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 12px; margin-bottom: 2px; }
svg { display: block; width: 100%; height: 64px; overflow: visible; }
.hist rect { fill: var(--light); }
.hist rect.p50 { fill: var(--accent); }
.hist text { font-size: 10px; fill: var(--muted); }
.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.spark polygon { fill: var(--light); opacity: 0.5; stroke: none; }
`;

const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
};
const int = (n) => Math.round(n).toLocaleString("en-US");
const ms = (n) => (n < 10 ? n.toFixed(1) : int(n));
const duration = (msec) => {
  const s = Math.max(0, Math.round(msec / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
};

const Base = globalThis.HTMLElement ?? class {};

/** The `<sluice-dashboard>` element. */
export class SluiceDashboard extends Base {
  static observedAttributes = ["src", "total"];

  #root;
  #source; // the EventSource listened to
  #owned = false; // opened here from `src` (so closed here)
  #snapshot;
  #samples = []; // output rates, items/s
  #last; // { elapsedMs, itemsOut } of the previous sample
  #layout = ""; // stage names and kinds the lanes are built for
  #parts = {};
  #onProgress = (e) => this.#receive(e.data);
  #onDone = (e) => {
    this.#receive(e.data);
    this.#finish("done");
  };
  #onError = (e) => {
    // A server-sent `error` event (the run failed) is a MessageEvent; a
    // lost connection is a plain Event (EventSource reconnects by itself).
    if (typeof e.data === "string") this.#finish("error");
  };

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#root.append(el("style", {}, STYLE), this.#skeleton());
    this.dataset.state = "idle";
  }

  connectedCallback() {
    const src = this.getAttribute("src");
    if (src && !this.#source) this.#open(src);
  }

  disconnectedCallback() {
    this.#detach();
  }

  attributeChangedCallback(name, before, after) {
    if (name === "src" && before !== after && this.isConnected) {
      this.#detach();
      if (after) this.#open(after);
    } else if (name === "total" && this.#snapshot) this.#render();
  }

  /** The `EventSource` listened to; set one the page owns to share it. */
  get source() {
    return this.#source;
  }

  set source(eventSource) {
    this.#detach();
    if (eventSource) this.#attach(eventSource, false);
  }

  /** The figures of the last progress event (decoded), or `undefined`. */
  get snapshot() {
    return this.#snapshot;
  }

  /**
   * Feeds one progress event's data (a string or the parsed JSON), of
   * either shape. A decoded `done: true` marks the run finished.
   */
  update(data) {
    this.#receive(data);
  }

  #open(src) {
    this.#attach(new EventSource(src), true);
  }

  #attach(source, owned) {
    this.#source = source;
    this.#owned = owned;
    this.#snapshot = undefined;
    this.#samples = [];
    this.#last = undefined;
    this.dataset.state = "connecting";
    source.addEventListener("progress", this.#onProgress);
    source.addEventListener("done", this.#onDone);
    source.addEventListener("error", this.#onError);
  }

  #detach() {
    const source = this.#source;
    if (!source) return;
    source.removeEventListener("progress", this.#onProgress);
    source.removeEventListener("done", this.#onDone);
    source.removeEventListener("error", this.#onError);
    if (this.#owned) source.close();
    this.#source = undefined;
  }

  #finish(state) {
    this.dataset.state = state;
    if (this.#owned) this.#source?.close();
    this.#render();
  }

  #receive(data) {
    let next;
    try {
      const parsed = typeof data === "string" ? JSON.parse(data) : data;
      next = decodeProgress(parsed, this.#snapshot);
    } catch {
      return; // not a progress event of a known shape: ignored
    }
    if (!next) return; // a delta before the first keyframe
    const last = this.#last;
    if (last && next.elapsedMs < last.elapsedMs) {
      this.#samples = []; // a new run (a reconnection): start over
    } else if (last && next.elapsedMs > last.elapsedMs) {
      const rate = (next.itemsOut - last.itemsOut) * 1000 /
        (next.elapsedMs - last.elapsedMs);
      this.#samples.push(Math.max(0, rate));
      if (this.#samples.length > SAMPLES) this.#samples.shift();
    }
    this.#last = { elapsedMs: next.elapsedMs, itemsOut: next.itemsOut };
    this.#snapshot = next;
    if (this.dataset.state === "connecting" || this.dataset.state === "idle") {
      this.dataset.state = "running";
    }
    if (next.done && this.dataset.state === "running") {
      this.dataset.state = "done";
    }
    this.#render();
  }

  #skeleton() {
    const p = this.#parts;
    const card = el("div", { class: "card", part: "card" });
    const totals = el("div", { class: "totals" });
    const figure = (key, label, cls = "") => {
      const span = el("span", { class: cls });
      p[key] = el("b", { "data-figure": key }, "0");
      span.append(`${label} `, p[key]);
      totals.append(span);
    };
    figure("itemsIn", "in");
    figure("itemsOut", "out");
    figure("failed", "failed", "failed");
    figure("rate", "rate");
    figure("elapsed", "elapsed");
    figure("eta", "ETA");
    p.state = el("span", { class: "state", "data-figure": "state" }, "idle");
    totals.append(p.state);
    p.bar = el("div", { class: "bar", hidden: "" });
    p.fill = el("div");
    p.bar.append(p.fill);
    p.lanes = el("div", { class: "lanes", part: "lanes" });

    const hist = el("figure", { class: "hist" });
    hist.append(el("figcaption", {}, "latency, read → out (ms)"));
    p.hist = svg("svg", {
      viewBox: "0 0 200 64",
      preserveAspectRatio: "xMinYMid meet",
    });
    hist.append(p.hist);
    const spark = el("figure", { class: "spark" });
    p.sparkCaption = el("figcaption", {}, "output rate (items/s)");
    spark.append(p.sparkCaption);
    p.spark = svg("svg", {
      viewBox: `0 0 ${SAMPLES - 1} 64`,
      preserveAspectRatio: "none",
    });
    p.sparkArea = svg("polygon");
    p.sparkLine = svg("polyline", { "vector-effect": "non-scaling-stroke" });
    p.spark.append(p.sparkArea, p.sparkLine);
    spark.append(p.spark);
    const charts = el("div", { class: "charts" });
    charts.append(hist, spark);
    card.append(totals, p.bar, p.lanes, charts);
    return card;
  }

  #buildLanes(stages) {
    const p = this.#parts;
    p.lanes.replaceChildren();
    p.lane = stages.map((s) => {
      const lane = el("div", { class: "lane", "data-stage": s.name });
      const name = el("span", { class: "name" }, s.name);
      name.append(el("small", {}, s.kind));
      const workers = el("span", { class: "workers" });
      const queued = el("span", { class: "num", "data-figure": "queued" });
      const completed = el("span", {
        class: "num",
        "data-figure": "completed",
      });
      const latency = el("span", { class: "num", "data-figure": "latency" });
      lane.append(name, workers, queued, completed, latency);
      p.lanes.append(lane);
      return { lane, workers, queued, completed, latency, slots: -1 };
    });
  }

  #render() {
    const s = this.#snapshot;
    const p = this.#parts;
    p.state.textContent = this.dataset.state;
    if (!s) return;
    const total = Number(this.getAttribute("total"));
    const rates = this.#samples.slice(-5);
    const rate = rates.length
      ? rates.reduce((a, b) => a + b, 0) / rates.length
      : s.elapsedMs > 0
      ? (s.itemsOut * 1000) / s.elapsedMs
      : 0;
    p.itemsIn.textContent = int(s.itemsIn);
    p.itemsOut.textContent = total > 0
      ? `${int(s.itemsOut)} / ${int(total)}`
      : int(s.itemsOut);
    p.failed.textContent = int(s.failed);
    p.failed.classList.toggle("some", s.failed > 0);
    p.rate.textContent = `${rate.toFixed(1)}/s`;
    p.elapsed.textContent = duration(s.elapsedMs);
    const left = total - s.itemsOut - s.skipped - s.filtered;
    p.eta.textContent = s.done
      ? "—"
      : total > 0 && rate > 0
      ? duration((Math.max(0, left) / rate) * 1000)
      : "…";
    p.bar.hidden = !(total > 0);
    if (total > 0) {
      p.fill.style.width = `${
        Math.min(100, (100 * (total - Math.max(0, left))) / total)
      }%`;
    }

    const layout = s.stages.map((x) => `${x.name}:${x.kind}`).join("|");
    if (layout !== this.#layout) {
      this.#layout = layout;
      this.#buildLanes(s.stages);
    }
    let hot = -1;
    let most = 0;
    s.stages.forEach((stage, i) => {
      const lane = p.lane[i];
      if (stage.queued > most && stage.kind !== "batch") {
        most = stage.queued;
        hot = i;
      }
      this.#renderWorkers(lane, stage);
      lane.queued.replaceChildren(
        stage.kind === "batch" ? "forming " : "queued ",
        el("b", {}, int(stage.queued)),
        ...(stage.backingOff ? [` · ${stage.backingOff} backing off`] : []),
      );
      lane.completed.replaceChildren(
        el("b", {}, int(stage.completed)),
        stage.failed ? ` done · ${int(stage.failed)} failed` : " done",
      );
      lane.latency.textContent = stage.latency.count
        ? `p50 ${ms(stage.latency.p50)} · p95 ${ms(stage.latency.p95)} ms`
        : "";
    });
    p.lane.forEach((lane, i) => lane.lane.classList.toggle("hot", i === hot));
    this.#renderHistogram(s.latency);
    this.#renderSparkline();
  }

  #renderWorkers(lane, stage) {
    if (stage.kind === "batch" || stage.kind === "flatten") {
      if (lane.slots !== 0) {
        lane.slots = 0;
        lane.workers.replaceChildren();
      }
      return;
    }
    const slots = Math.max(stage.concurrency, stage.workers.length);
    if (slots > MASK_SLOTS) {
      lane.slots = -1;
      lane.workers.textContent = `${stage.busy} / ${slots} busy`;
      return;
    }
    if (lane.slots !== slots) {
      lane.slots = slots;
      lane.workers.replaceChildren(
        ...Array.from({ length: slots }, () => el("i")),
      );
    }
    const cells = lane.workers.children;
    for (let i = 0; i < slots; i++) {
      const busy = stage.workers[i] === true;
      cells[i].className = busy ? "busy" : "";
      cells[i].title = `worker ${i}: ${busy ? "busy" : "idle"}`;
    }
    lane.workers.dataset.busy = String(stage.workers.filter(Boolean).length);
  }

  #renderHistogram(latency) {
    const bars = [["p50", latency.p50], ["p95", latency.p95], [
      "p99",
      latency.p99,
    ], ["max", latency.max]];
    const top = Math.max(1, latency.max);
    const w = 200 / bars.length;
    this.#parts.hist.replaceChildren(
      ...bars.flatMap(([name, value], i) => {
        // The value above its bar, the name under it: one label per line,
        // so four-digit values never run into the next bar's.
        const h = Math.max(1, (value / top) * 40);
        const mid = i * w + w / 2;
        return [
          svg("rect", {
            class: name,
            x: i * w + 4,
            y: 52 - h,
            width: w - 8,
            height: h,
            rx: 2,
          }),
          Object.assign(
            svg("text", { x: mid, y: 50 - h, "text-anchor": "middle" }),
            { textContent: ms(value) },
          ),
          Object.assign(
            svg("text", { x: mid, y: 63, "text-anchor": "middle" }),
            { textContent: name },
          ),
        ];
      }),
    );
  }

  #renderSparkline() {
    const samples = this.#samples;
    const p = this.#parts;
    const top = Math.max(1, ...samples);
    const x0 = SAMPLES - samples.length;
    const points = samples.map((r, i) =>
      `${x0 + i},${(62 - (r / top) * 58).toFixed(1)}`
    );
    p.sparkLine.setAttribute("points", points.join(" "));
    p.sparkArea.setAttribute(
      "points",
      points.length ? `${x0},64 ${points.join(" ")} ${SAMPLES - 1},64` : "",
    );
    p.spark.dataset.samples = String(samples.length);
    p.sparkCaption.textContent = `output rate (items/s, peak ${
      top.toFixed(1)
    })`;
  }
}

if (globalThis.customElements && !customElements.get("sluice-dashboard")) {
  customElements.define("sluice-dashboard", SluiceDashboard);
}

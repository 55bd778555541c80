// Scaling benchmarks: the recorded bench/results/scaling.json from GET /api/v1/benchmarks/scaling, drawn as three
// log-log charts. Nothing is measured here; the page only asks when the server says a record exists.
"use strict";

(() => {
  const MINT = "#5ee6b0";
  const AMBER = "#f5b74e";
  const GREY = "#9aa7b4";
  const BLUE = "#6cb6ff";
  const $ = (id) => document.getElementById(id);
  const status = $("scaling-status");
  const provenance = $("scaling-provenance");

  const logAxis = (title, extra = {}) => ({
    type: "log", title: { text: title }, gridcolor: "#2a3440", zerolinecolor: "#3a4654", ...extra,
  });
  // A log axis for values: ticks at powers of ten when they span two decades or more, else at 1, 2, 5 x 10^n,
  // written out in full (Plotly's own minor labels would read "2" for 0.2).
  const valueAxis = (title, values) => {
    const positive = values.filter((v) => v > 0);
    const lo = Math.min(...positive), hi = Math.max(...positive);
    if (Math.log10(hi / lo) >= 2) return logAxis(title, { dtick: 1 });
    const ticks = [];
    for (let e = Math.floor(Math.log10(lo)) - 1; e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of [1, 2, 5]) {
        const v = Number((m * 10 ** e).toPrecision(1));
        if (v >= lo / 1.6 && v <= hi * 1.6) ticks.push(v);
      }
    }
    return logAxis(title, { tickvals: ticks });
  };
  const pick = (rows, key) => rows.map((r) => r[key]);
  const power = (fit, xs) => xs.map((x) => fit.prefactor * x ** fit.exponent);

  function showProvenance(rec) {
    const m = rec.machine;
    Lab.setText("pv-cpu", m.cpu);
    Lab.setText("pv-cores", `${m.cores} logical CPU(s), ${m.cores_available} available; ${m.platform}`);
    Lab.setText("pv-torch", m.torch);
    Lab.setText("pv-threads", `${m.threads} intra-op thread(s)${m.torch_capability ? `, ${m.torch_capability}` : ""}; Python ${m.python}`);
    Lab.setText("pv-date", rec.recorded_at.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", ""));
    Lab.setText("pv-duration", `the run took ${Lab.fmt(rec.duration_s, 0)} s`);
    Lab.setText("pv-load", `${Lab.fmt(rec.load_average.start, 2)} → ${Lab.fmt(rec.load_average.end, 2)}`);
    Lab.setText("pv-command", rec.command);
    Lab.setText("pv-model", `${rec.model.model_id} (${rec.model.resolution} px, DiT width ${rec.model.dit.width}, ` +
      `depth ${rec.model.dit.depth})`);
    $("pv-quick").hidden = !rec.quick;
  }

  function drawSteps(steps) {
    const rows = steps.rows;
    const xs = pick(rows, "steps");
    const traces = [
      { name: "median", x: xs, y: pick(rows, "median_s_per_image"), type: "scatter", mode: "lines+markers",
        line: { color: MINT }, hovertemplate: "%{x} steps: %{y:.3f} s/image<extra>median</extra>" },
      { name: "best run", x: xs, y: pick(rows, "best_s_per_image"), type: "scatter", mode: "markers",
        marker: { color: GREY, symbol: "circle-open", size: 9 }, hovertemplate: "%{x} steps: %{y:.3f} s/image<extra>best</extra>" },
    ];
    if (steps.fit) {
      traces.push({ name: "fit: fixed + per step × steps", x: xs, y: xs.map((s) => steps.fit.fixed_s + steps.fit.per_unit_s * s),
        type: "scatter", mode: "lines", line: { color: AMBER, dash: "dash" }, hoverinfo: "skip" });
    }
    Plotly.react("scaling-steps-chart", traces, Lab.plotLayout({
      xaxis: logAxis("denoising steps", { tickvals: xs }), yaxis: valueAxis("seconds per image", traces.flatMap((t) => t.y)),
    }), Lab.plotConfig);
    Lab.setText("steps-batch", String(steps.batch));
    const parts = [];
    if (steps.fit) {
      parts.push(`Time is a fixed cost plus a cost per step: about ${Lab.fmt(steps.fit.per_unit_s * 1000, 1)} ms per step ` +
        `and ${Lab.fmt(steps.fit.fixed_s, 3)} s that does not grow (caption encoding, decode, PNG).`);
    }
    if (steps.power) parts.push(`On log-log axes the slope is ${Lab.fmt(steps.power.exponent, 2)} (1 = proportional to the steps).`);
    Lab.setText("steps-summary", parts.join(" "));
  }

  function drawBatch(batch) {
    const rows = batch.rows;
    const xs = pick(rows, "batch");
    const perImage = pick(rows, "median_s_per_image"), perBatch = pick(rows, "median_s_per_batch");
    Plotly.react("scaling-batch-chart", [
      { name: "seconds per image", x: xs, y: perImage, type: "scatter", mode: "lines+markers",
        line: { color: MINT }, hovertemplate: "batch %{x}: %{y:.3f} s per image<extra></extra>" },
      { name: "seconds per batch", x: xs, y: perBatch, type: "scatter", mode: "lines+markers",
        line: { color: BLUE }, hovertemplate: "batch %{x}: %{y:.3f} s per call<extra></extra>" },
    ], Lab.plotLayout({
      xaxis: logAxis("images per batch", { tickvals: xs }), yaxis: valueAxis("seconds (median)", [...perImage, ...perBatch]),
    }), Lab.plotConfig);
    Lab.setText("batch-steps", String(batch.steps));
    const last = rows[rows.length - 1];
    const parts = [`Batch ${last.batch} makes ${Lab.fmt(last.speedup, 2)}× the images per second of batch ${rows[0].batch} ` +
      `(${Lab.fmt(last.images_per_s, 1)} against ${Lab.fmt(rows[0].images_per_s, 1)}).`];
    if (batch.fit) {
      parts.push(`Per call: about ${Lab.fmt(batch.fit.fixed_s, 3)} s fixed plus ${Lab.fmt(batch.fit.per_unit_s, 3)} s per image.`);
    }
    if (batch.power) parts.push(`Seconds per batch grow like batch^${Lab.fmt(batch.power.exponent, 2)}.`);
    Lab.setText("batch-summary", parts.join(" "));
  }

  function drawResolution(res, model) {
    const rows = res.rows;
    const xs = pick(rows, "tokens");
    const traces = [
      { name: "DiT forward (random weights)", x: xs, y: pick(rows, "dit_median_ms"), type: "scatter", mode: "lines+markers",
        line: { color: MINT }, customdata: pick(rows, "resolution"),
        hovertemplate: "%{customdata} px, N = %{x}: %{y:.1f} ms<extra>DiT</extra>" },
      { name: "VAE decode", x: xs, y: pick(rows, "vae_median_ms"), type: "scatter", mode: "lines+markers",
        line: { color: BLUE }, customdata: pick(rows, "resolution"),
        hovertemplate: "%{customdata} px, N = %{x}: %{y:.1f} ms<extra>VAE decode</extra>" },
    ];
    if (res.dit_power) {
      traces.push({ name: `DiT fit ∝ N^${Lab.fmt(res.dit_power.exponent, 2)}`, x: xs, y: power(res.dit_power, xs),
        type: "scatter", mode: "lines", line: { color: AMBER, dash: "dash" }, hoverinfo: "skip" });
    }
    Plotly.react("scaling-resolution-chart", traces, Lab.plotLayout({
      xaxis: logAxis("DiT tokens N (image side)", { tickvals: xs, ticktext: rows.map((r) => `${r.tokens}<br>${r.resolution} px`),
        title: { text: "DiT tokens N (image side)", standoff: 12 } }),
      yaxis: valueAxis("milliseconds (median)", traces.flatMap((t) => t.y)),
      margin: { l: 56, r: 16, t: 32, b: 80 },
      legend: { orientation: "h", y: -0.32 },
    }), Lab.plotConfig);
    Lab.setText("res-dit-batch", String(res.dit_batch));
    Lab.setText("res-f", String(model.downsample_factor));
    Lab.setText("res-native", String(res.reference_resolution));
    const parts = [];
    if (res.dit_power) parts.push(`The denoiser's forward grows like N^${Lab.fmt(res.dit_power.exponent, 2)}`);
    if (res.vae_power) parts.push(`the VAE decode like N^${Lab.fmt(res.vae_power.exponent, 2)}`);
    const first = rows[0], last = rows[rows.length - 1];
    Lab.setText("resolution-summary", (parts.length ? `${parts.join(", ")} (least-squares slopes over ${rows.length} sizes). ` : "") +
      `From ${first.resolution} to ${last.resolution} px the tokens grow ${Lab.fmt(last.tokens / first.tokens, 0)}×, ` +
      `the forward ${Lab.fmt(last.dit_median_ms / first.dit_median_ms, 1)}× and the decode ${Lab.fmt(last.vae_median_ms / first.vae_median_ms, 1)}×.`);
    const body = document.querySelector("#resolution-table tbody");
    body.replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      if (r.resolution === res.reference_resolution) tr.className = "current";
      const cells = [`${r.resolution} px`, `${r.latent_size} × ${r.latent_size}`, Lab.fmt(r.tokens), Lab.fmt(r.dit_median_ms, 1),
        Lab.fmt(r.dit_ratio, 2), r.dit_local_exponent === null ? "–" : Lab.fmt(r.dit_local_exponent, 2), Lab.fmt(r.dit_gflop, 2),
        Lab.fmt(r.vae_median_ms, 1), Lab.fmt(r.vae_ratio, 2)];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  async function start() {
    if (!provenance || provenance.dataset.recorded !== "true") return;  // the server said: no file, nothing to ask
    let rec;
    try {
      rec = await Lab.getJSON("/api/v1/benchmarks/scaling");
    } catch (err) {
      if (!Lab.isAbort(err)) {
        status.textContent = err.message;
        $("scaling-results").hidden = true;
      }
      return;
    }
    showProvenance(rec);
    drawSteps(rec.steps);
    drawBatch(rec.batch);
    drawResolution(rec.resolution, rec.model);
    status.textContent = `Recorded ${rec.recorded_at.slice(0, 10)} by ${rec.command}; not measured now.`;
    document.body.dataset.scalingDrawn = "true";
  }

  start();
})();

// Guidance instrument, "two shapes": the model card's per-category adherence and binding failures against s, and a
// live re-measurement of one category through POST /api/v1/generate/sweep.
"use strict";

(() => {
  const CATEGORIES = ["colour binding", "size binding", "relation", "counting"];
  const COLOURS = { "colour binding": "#5ee6b0", "size binding": "#ffb454", relation: "#7cc4ff", counting: "#e68ad8" };
  const FAILURES = ["swap", "leak", "copy"];
  const LIVE = { prompts: 4, seeds: 2, scales: [1, 3, 7.5] };
  const $ = (id) => document.getElementById(id);
  const status = $("pairs-status");
  const errorBox = $("pairs-error");
  const button = $("pairs-live");
  let sweep = []; // the card's pairs.sweep rows
  let live = null; // {category, points}
  let steps = 20;
  let sampler = "dpmpp_2m";

  const pct = (x) => (x === undefined || x === null ? "–" : `${Lab.fmt(100 * x, 1)} %`);

  function drawTable() {
    $("pairs-table").tBodies[0].replaceChildren(...sweep.map((r) => {
      const tr = document.createElement("tr");
      const cells = [Lab.fmt(r.scale), ...CATEGORIES.map((c) => pct(r.categories[c].all)),
        ...FAILURES.map((f) => pct(r.failures[f]))];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
  }

  function drawChart() {
    const x = sweep.map((r) => r.scale);
    const traces = CATEGORIES.map((c) => ({
      x, y: sweep.map((r) => 100 * r.categories[c].all), type: "scatter", mode: "lines+markers",
      name: `${c} (% all right)`, line: { color: COLOURS[c] },
    }));
    traces.push(...FAILURES.map((f, i) => ({
      x, y: sweep.map((r) => 100 * r.failures[f]), type: "scatter", mode: "lines", name: `${f} (%)`,
      line: { color: "#9aa7b4", dash: ["dash", "dot", "dashdot"][i] },
    })));
    if (live) {
      traces.push({ x: live.points.map((p) => p.scale), y: live.points.map((p) => 100 * p.adherence.all),
        type: "scatter", mode: "markers", name: `live: ${live.category} (%)`,
        marker: { color: COLOURS[live.category], size: 13, symbol: "diamond-open", line: { width: 3 } } });
    }
    Plotly.react("pairs-chart", traces, Lab.plotLayout({
      xaxis: { title: { text: "guidance scale s" }, gridcolor: "#2a3440" },
      yaxis: { title: { text: "share of images (%)" }, range: [0, 105], gridcolor: "#2a3440" },
      margin: { l: 56, r: 24, t: 24, b: 48 },
      legend: { orientation: "h", y: -0.3 },
    }), Lab.plotConfig);
  }

  async function measureLive() {
    const category = $("pairs-category").value;
    button.disabled = true;
    errorBox.textContent = "";
    status.textContent = `Measuring ${category} live: ${LIVE.prompts} prompts × ${LIVE.seeds} seeds at ` +
      `s = ${LIVE.scales.join(", ")}…`;
    try {
      const r = await Lab.postJSON("/api/v1/generate/sweep", { ...LIVE, steps, sampler, category });
      live = { category, points: r.points };
      status.textContent = `Live: ${r.points.reduce((n, p) => n + p.images, 0)} images of “${r.prompts[0]}” and ` +
        `${r.prompts.length - 1} more drawn and judged in ${Lab.fmt(r.timings.total_s, 2)} s on this server ` +
        "(the card's first prompts and seeds of that category).";
      drawChart();
    } catch (err) {
      if (!Lab.isAbort(err)) errorBox.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    let model;
    try {
      model = await Lab.getJSON("/api/v1/model", {}, "pairs-model");
    } catch (err) {
      if (!Lab.isAbort(err)) errorBox.textContent = err.message;
      return;
    }
    const pairs = model.card && model.card.evaluation && model.card.evaluation.pairs;
    if (pairs && Array.isArray(pairs.sweep)) {
      sweep = pairs.sweep;
      steps = pairs.settings.steps || steps;
      sampler = pairs.settings.sampler || sampler;
      const best = pairs.summary.two_object_all;
      status.textContent = `Model card: ${pairs.settings.prompts} prompts × ${pairs.settings.seeds} seeds per ` +
        `category and s. All categories together: ${pct(best.at_first_scale)} at s = ${Lab.fmt(best.first_scale)}, ` +
        `${pct(best.best_all)} at the best s = ${Lab.fmt(best.best_scale)}.`;
    } else if (pairs && pairs.not_measured) {
      status.textContent = `Two-shape adherence ${pairs.not_measured}. The autoencoder's ceiling is measured: the ` +
        `judge reads ${pct(pairs.vae.judge_reconstructions.all)} of its two-shape reconstructions right.`;
    } else {
      status.textContent = "The model card has no two-shape section (it was measured with --no-pairs).";
    }
    button.disabled = !model.live.loaded || Boolean(pairs && pairs.not_measured);
    drawTable();
    drawChart();
  }

  button.addEventListener("click", measureLive);
  start();
})();

// Guidance instrument, "measured on the real model": the model card's sweep over s beside the toy, and a live
// re-measurement through POST /api/v1/generate/sweep.
"use strict";

(() => {
  const MINT = "#5ee6b0";
  const AMBER = "#ffb454";
  const GREY = "#9aa7b4";
  const LIVE = { prompts: 4, seeds: 2, scales: [1, 3, 7.5] };
  const $ = (id) => document.getElementById(id);
  const status = $("real-model-status");
  const errorBox = $("real-model-error");
  const button = $("real-model-live");
  let card = []; // the card's guidance_sweep rows
  let toy = null; // the toy's curve {scales, adherence}
  let live = []; // points measured here
  let steps = 20;
  let sampler = "dpmpp_2m";

  const pct = (x) => (x === undefined || x === null ? "–" : `${Lab.fmt(100 * x, 1)} %`);

  function drawTable() {
    const scales = [...new Set([...card.map((r) => r.scale), ...live.map((p) => p.scale)])].sort((a, b) => a - b);
    $("real-model-table").tBodies[0].replaceChildren(...scales.map((s) => {
      const c = card.find((r) => r.scale === s);
      const l = live.find((p) => p.scale === s);
      const tr = document.createElement("tr");
      for (const text of [Lab.fmt(s), c ? pct(c.adherence.all) : "–", c ? Lab.fmt(c.diversity_rms, 3) : "–",
        l ? pct(l.adherence.all) : "–", l ? Lab.fmt(l.diversity_rms, 3) : "–"]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      if (l) tr.className = "current";
      return tr;
    }));
  }

  function drawChart() {
    const traces = [];
    if (card.length) {
      traces.push(
        { x: card.map((r) => r.scale), y: card.map((r) => 100 * r.adherence.all), type: "scatter",
          mode: "lines+markers", name: "model card: adherence (%)", line: { color: MINT } },
        { x: card.map((r) => r.scale), y: card.map((r) => r.diversity_rms), type: "scatter", mode: "lines+markers",
          yaxis: "y2", name: "model card: diversity (RMS)", line: { color: AMBER } },
      );
    }
    if (toy) {
      traces.push({ x: toy.scales, y: toy.adherence.map((a) => 100 * a), type: "scatter", mode: "lines",
        name: "toy: adherence (%)", line: { color: GREY, dash: "dot" } });
    }
    if (live.length) {
      traces.push(
        { x: live.map((p) => p.scale), y: live.map((p) => 100 * p.adherence.all), type: "scatter", mode: "markers",
          name: "live: adherence (%)", marker: { color: MINT, size: 13, symbol: "diamond-open", line: { width: 3 } } },
        { x: live.map((p) => p.scale), y: live.map((p) => p.diversity_rms), type: "scatter", mode: "markers",
          yaxis: "y2", name: "live: diversity (RMS)",
          marker: { color: AMBER, size: 13, symbol: "diamond-open", line: { width: 3 } } },
      );
    }
    Plotly.react("real-model-chart", traces, Lab.plotLayout({
      xaxis: { title: { text: "guidance scale s" }, gridcolor: "#2a3440", range: [-0.5, 20.5] },
      yaxis: { title: { text: "adherence (%)" }, range: [0, 105], gridcolor: "#2a3440" },
      yaxis2: Lab.rightAxis("diversity (RMS, pixels 0–1)"),
      margin: { l: 56, r: 56, t: 24, b: 48 },
      legend: { orientation: "h", y: -0.3 },
    }), Lab.plotConfig);
  }

  function draw() {
    drawTable();
    drawChart();
  }

  async function measureLive() {
    button.disabled = true;
    errorBox.textContent = "";
    status.textContent = `Measuring live: ${LIVE.prompts} prompts × ${LIVE.seeds} seeds at s = ${LIVE.scales.join(", ")}, ` +
      `${steps} ${sampler} steps…`;
    try {
      const r = await Lab.postJSON("/api/v1/generate/sweep", { ...LIVE, steps, sampler });
      live = r.points;
      status.textContent = `Live: ${r.points.reduce((n, p) => n + p.images, 0)} images drawn and judged in ` +
        `${Lab.fmt(r.timings.total_s, 2)} s on this server (the card's first ${r.prompts.length} prompts and seeds, ` +
        "so these points should sit near the card's lines, give or take the small sample).";
      draw();
    } catch (err) {
      if (!Lab.isAbort(err)) errorBox.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    try {
      const toyResult = await Lab.getJSON("/api/v1/instruments/guidance", {}, "toy-curve");
      toy = toyResult.curve;
    } catch (err) {
      if (!Lab.isAbort(err)) errorBox.textContent = err.message;
    }
    let model;
    try {
      model = await Lab.getJSON("/api/v1/model", {}, "real-model");
    } catch (err) {
      if (!Lab.isAbort(err)) errorBox.textContent = err.message;
      return;
    }
    const evaluation = model.card && model.card.evaluation;
    const notes = [];
    if (evaluation && Array.isArray(evaluation.guidance_sweep)) {
      card = evaluation.guidance_sweep;
      const st = evaluation.settings || {};
      steps = st.steps || steps;
      sampler = st.sampler || sampler;
      notes.push(`Model card: ${st.prompts} prompts × ${st.seeds} seeds per s, ${st.steps} ${st.sampler} steps` +
        `${model.card.generated_at ? `, measured ${model.card.generated_at.slice(0, 10)}` : ""}.`);
    } else {
      notes.push(`No measured sweep in the model card (${model.card_error || "the card has no guidance_sweep"}).`);
    }
    if (model.live.loaded) {
      button.disabled = false;
    } else {
      notes.push("The model is not loaded on this server, so the live re-measurement is unavailable.");
    }
    status.textContent = notes.join(" ");
    draw();
  }

  button.addEventListener("click", measureLive);
  start();
})();

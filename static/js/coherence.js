// Frame coherence (INSTRUMENT MM3.3, EQ MM3.6): every position and cost comes from /api/v1/instruments/coherence.
"use strict";

(() => {
  const ENDPOINT = "/api/v1/instruments/coherence";
  const GREY = "#9aa7b4";
  const MINT = "#5ee6b0";
  const AMBER = "#ffb454";
  const PANEL_LINE = "#3a4654";
  const GAP = 0.15; // between frame panels, in frame widths
  const BAND_COLOURS = {
    smooth: "rgba(94, 230, 176, 0.12)", "mostly coherent": "rgba(94, 230, 176, 0.05)",
    jittery: "rgba(255, 180, 84, 0.08)", flicker: "rgba(255, 107, 107, 0.10)",
  };

  const form = document.getElementById("coherence-form");
  const errorBox = document.getElementById("coherence-error");
  const figures = document.querySelectorAll("[data-figures]");
  const presetButtons = Array.from(form.querySelectorAll("button[data-coherence]"));
  const frameNumbers = (n) => Array.from({ length: n }, (_, k) => k + 1);
  const LEGEND_BELOW = { legend: { orientation: "h", y: -0.32 }, margin: { l: 56, r: 16, t: 24, b: 84 } };

  // Frames as small multiples, 8 to a row (4 on a phone); y = 0 is the top of a frame, so it is drawn downward.
  function drawStrip(r) {
    const n = r.frames;
    const box = document.getElementById("coherence-strip");
    const cols = Math.min(n, box.clientWidth < 520 ? 4 : 8);
    const rows = Math.ceil(n / cols);
    const aspect = Math.min(4, Math.max(0.25, r.latent_height / r.latent_width));
    const origin = (k) => [(k % cols) * (1 + GAP), -Math.floor(k / cols) * (aspect + GAP)];
    const ghostX = [], ghostY = [], dotX = [], dotY = [], labelX = [], labelY = [], shapes = [];
    for (let k = 0; k < n; k++) {
      const [x0, y0] = origin(k);
      for (let j = 0; j < n; j++) { ghostX.push(x0 + r.x[j]); ghostY.push(y0 - aspect * r.y[j]); }
      ghostX.push(null); ghostY.push(null);
      dotX.push(x0 + r.x[k]); dotY.push(y0 - aspect * r.y[k]);
      labelX.push(x0 + 0.04); labelY.push(y0 - 0.04);
      shapes.push({ type: "rect", xref: "x", yref: "y", x0, x1: x0 + 1, y0: y0 - aspect, y1: y0,
        line: { color: PANEL_LINE, width: 1 }, fillcolor: "#0f1419", layer: "below" });
    }
    const traces = [
      { x: ghostX, y: ghostY, type: "scatter", mode: "lines", name: "whole path", hoverinfo: "skip",
        line: { color: "rgba(154, 167, 180, 0.35)", width: 1 } },
      { x: dotX, y: dotY, type: "scatter", mode: "markers", name: "object in this frame",
        text: frameNumbers(n).map((k) => `frame ${k}: x = ${Lab.fmt(r.x[k - 1], 3)}, y = ${Lab.fmt(r.y[k - 1], 3)}`),
        hoverinfo: "text", marker: { color: MINT, size: n > 16 ? 6 : 9 } },
      { x: labelX, y: labelY, type: "scatter", mode: "text", text: frameNumbers(n).map(String), hoverinfo: "skip",
        textposition: "bottom right", textfont: { color: GREY, size: 9 }, showlegend: false },
    ];
    const width = cols * (1 + GAP) - GAP;
    const height = rows * (aspect + GAP) - GAP;
    Plotly.react("coherence-strip", traces, Lab.plotLayout({
      xaxis: { visible: false, range: [-0.05, width + 0.05], fixedrange: true },
      yaxis: { visible: false, range: [-height - 0.05, 0.05], scaleanchor: "x", fixedrange: true },
      plot_bgcolor: "rgba(0,0,0,0)",
      shapes,
      showlegend: false,
      margin: { l: 8, r: 8, t: 8, b: 8 },
      height: Math.round(Math.min(1200, 16 + ((box.clientWidth - 16) * (height + 0.1)) / (width + 0.1))),
    }), Lab.plotConfig);
  }

  function drawPath(r) {
    const k = frameNumbers(r.frames);
    const traces = [
      { x: k, y: r.x, type: "scatter", mode: "lines+markers", name: "x (frame widths)", line: { color: MINT } },
      { x: k, y: r.y, type: "scatter", mode: "lines+markers", name: "y (frame heights)", line: { color: AMBER } },
    ];
    Plotly.react("coherence-path", traces, Lab.plotLayout({
      xaxis: { title: { text: "frame" }, gridcolor: "#2a3440", range: [0.5, r.frames + 0.5] },
      yaxis: { title: { text: "position (0..1 of the frame)" }, gridcolor: "#2a3440", range: [0, 1] },
      ...LEGEND_BELOW,
    }), Lab.plotConfig);
  }

  function drawJump(r) {
    const top = Math.max(0.35, r.mean_jump * 1.1);
    let lower = 0;
    const shapes = r.regimes.map((band) => {
      const upper = band.upper === null ? top : band.upper;
      const shape = { type: "rect", xref: "paper", yref: "y", x0: 0, x1: 1, y0: lower, y1: upper, layer: "below",
        line: { width: 0 }, fillcolor: BAND_COLOURS[band.name] || "rgba(0,0,0,0)" };
      lower = upper;
      return shape;
    });
    lower = 0;
    const annotations = r.regimes.map((band) => {
      const upper = band.upper === null ? top : band.upper;
      const note = { xref: "paper", yref: "y", x: 1, y: (lower + upper) / 2, xanchor: "right", text: band.name,
        showarrow: false, font: { color: GREY, size: 10 } };
      lower = upper;
      return note;
    });
    shapes.push({ type: "line", xref: "x", yref: "paper", x0: r.coherence, x1: r.coherence, y0: 0, y1: 1,
      line: { color: GREY, dash: "dot" } });
    const traces = [
      { x: r.jump_curve.map((p) => p.coherence), y: r.jump_curve.map((p) => p.jump), type: "scatter", mode: "lines",
        name: "expected (exact for the prior)", line: { color: AMBER } },
      { x: [r.coherence], y: [r.mean_jump], type: "scatter", mode: "markers", name: "this sample",
        marker: { color: MINT, size: 13, symbol: "circle-open", line: { width: 3 } } },
    ];
    Plotly.react("coherence-jump", traces, Lab.plotLayout({
      xaxis: { title: { text: "coherence c" }, gridcolor: "#2a3440", range: [-0.02, 1.02] },
      yaxis: { title: { text: "mean jump (frame widths / frame)" }, gridcolor: "#2a3440", range: [0, top] },
      shapes, annotations,
      ...LEGEND_BELOW,
    }), Lab.plotConfig);
  }

  function drawCost(r) {
    const c = r.cost_curve;
    const here = c.find((p) => p.frames === r.frames);
    const traces = [
      { x: c.map((p) => p.frames), y: c.map((p) => p.joint), type: "scatter", mode: "lines",
        name: "joint space-time, N²", line: { color: AMBER } },
      { x: c.map((p) => p.frames), y: c.map((p) => p.factorised), type: "scatter", mode: "lines",
        name: "factorised, T·S² + S·T²", line: { color: MINT } },
      { x: [here.frames, here.frames], y: [here.joint, here.factorised], type: "scatter", mode: "markers",
        name: `your clip: ${r.frames} frames`,
        marker: { color: "#e6edf3", size: 12, symbol: "circle-open", line: { width: 3 } } },
    ];
    Plotly.react("coherence-cost", traces, Lab.plotLayout({
      xaxis: { title: { text: "frames T_f" }, gridcolor: "#2a3440" },
      yaxis: { type: "log", title: { text: "attention pairs per layer (log scale)" }, gridcolor: "#2a3440",
        exponentformat: "power" },
      ...LEGEND_BELOW,
    }), Lab.plotConfig);
  }

  function showReadouts(r) {
    Lab.setText("ro-regime", r.regime);
    Lab.setText("ro-jump", Lab.fmt(r.mean_jump, 3));
    Lab.setText("ro-jump-cells", Lab.fmt(r.mean_jump_cells, 2));
    Lab.setText("ro-jump-expected", Lab.fmt(r.expected_jump, 3));
    Lab.setText("ro-tokens", Lab.fmt(r.tokens.total));
    Lab.setText("ro-temporal", Lab.fmt(r.tokens.temporal));
    Lab.setText("ro-spatial", Lab.fmt(r.tokens.spatial));
    Lab.setText("ro-joint", Lab.fmt(r.joint_cost));
    Lab.setText("ro-factorised", Lab.fmt(r.factorised_cost));
    Lab.setText("ro-saving", Lab.fmt(r.factorised_saving, 1));
  }

  // values null: no preset is on (the server refused the settings, so none of them is on show).
  function markPresets(values) {
    for (const button of presetButtons) {
      const on = values !== null && Number(button.dataset.coherence) === Number(values.coherence);
      button.setAttribute("aria-pressed", String(on));
    }
  }

  async function update(values) {
    markPresets(values);
    try {
      const r = await Lab.getJSON(ENDPOINT, values);
      Lab.markStale(figures, errorBox);
      showReadouts(r);
      drawStrip(r);
      drawPath(r);
      drawJump(r);
      drawCost(r);
    } catch (err) {
      if (Lab.isAbort(err)) return;
      markPresets(null);
      Lab.markStale(figures, errorBox, err.message);
    }
  }

  const controls = Lab.bindControls(form, update);
  for (const button of presetButtons) {
    button.addEventListener("click", () => controls.write({ coherence: button.dataset.coherence }));
  }
  controls.fire();
})();

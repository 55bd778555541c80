// Latent vs pixel (INSTRUMENT MM3.1, EQ MM3.3): every number comes from /api/v1/instruments/compression.
"use strict";

(() => {
  const ENDPOINT = "/api/v1/instruments/compression";
  const GREY = "#9aa7b4";
  const MINT = "#5ee6b0";
  const AMBER = "#ffb454";

  const form = document.getElementById("compression-form");
  const errorBox = document.getElementById("compression-error");
  const presetBox = document.getElementById("compression-presets");
  const figures = document.querySelectorAll("[data-figures]");
  const LEGEND_BELOW = { legend: { orientation: "h", y: -0.32 }, margin: { l: 56, r: 16, t: 24, b: 84 } };
  const shape = (s) => s.map((n) => Lab.fmt(n)).join(" × ");

  function drawBars(r) {
    const names = ["values", "DiT tokens", "attention pairs"];
    const pixel = [r.pixel.values, r.pixel.tokens, r.pixel.attention_pairs];
    const latent = [r.latent.values, r.latent.tokens, r.latent.attention_pairs];
    const traces = [
      { x: names, y: pixel, type: "bar", name: `pixel space (${shape(r.pixel.shape)})`, marker: { color: GREY },
        text: pixel.map((v) => Lab.fmt(v)), textposition: "outside", cliponaxis: false },
      { x: names, y: latent, type: "bar", name: `latent (${shape(r.latent.shape)})`, marker: { color: MINT },
        text: latent.map((v) => Lab.fmt(v)), textposition: "outside", cliponaxis: false },
    ];
    const top = Math.log10(Math.max(...pixel, ...latent));
    Plotly.react("compression-bars", traces, Lab.plotLayout({
      barmode: "group",
      yaxis: { type: "log", title: { text: "count per step (log scale)" }, gridcolor: "#2a3440",
        range: [0, top + 1], exponentformat: "power" },
      xaxis: { gridcolor: "#2a3440" },
      ...LEGEND_BELOW,
    }), Lab.plotConfig);
  }

  function drawCurve(r) {
    const c = r.curve;
    const here = c.find((p) => p.f === r.f);
    const traces = [
      { x: c.map((p) => p.f), y: c.map((p) => p.values_fraction), type: "scatter", mode: "lines+markers",
        name: "values vs pixel space", line: { color: MINT } },
      { x: c.map((p) => p.f), y: c.map((p) => p.attention_fraction), type: "scatter", mode: "lines+markers",
        name: "attention pairs vs pixel space", line: { color: AMBER } },
      { x: [here.f, here.f], y: [here.values_fraction, here.attention_fraction], type: "scatter", mode: "markers",
        name: `your f = ${r.f}`, marker: { color: "#e6edf3", size: 13, symbol: "circle-open", line: { width: 3 } } },
    ];
    Plotly.react("compression-curve", traces, Lab.plotLayout({
      xaxis: { type: "log", title: { text: "downsampling factor f" }, gridcolor: "#2a3440",
        tickvals: c.map((p) => p.f) },
      yaxis: { type: "log", title: { text: "cost relative to pixel space" }, gridcolor: "#2a3440",
        exponentformat: "power" },
      shapes: [{ type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: 1, y1: 1,
        line: { color: GREY, dash: "dot" } }],
      ...LEGEND_BELOW,
    }), Lab.plotConfig);
  }

  function showReadouts(r) {
    Lab.setText("ro-pixel-shape", shape(r.pixel.shape));
    Lab.setText("ro-pixel-values", Lab.fmt(r.pixel.values));
    Lab.setText("ro-latent-shape", shape(r.latent.shape));
    Lab.setText("ro-latent-values", Lab.fmt(r.latent.values));
    Lab.setText("ro-ratio", Lab.fmt(r.ratio, 3));
    Lab.setText("ro-grid", Lab.fmt(r.grid_reduction));
    Lab.setText("ro-tokens", Lab.fmt(r.latent.tokens));
    Lab.setText("ro-pixel-tokens", Lab.fmt(r.pixel.tokens));
    Lab.setText("ro-pixel-vpt", Lab.fmt(r.pixel.values_per_token));
    Lab.setText("ro-latent-vpt", Lab.fmt(r.latent.values_per_token));
    Lab.setText("ro-attn", r.attention_reduction > 1 ? `1/${Lab.fmt(r.attention_reduction)}` : "the same");
    Lab.setText("ro-attn-pairs", Lab.fmt(r.latent.attention_pairs));
    Lab.setText("ro-pixel-pairs", Lab.fmt(r.pixel.attention_pairs));
  }

  // values null: no preset is on (the server refused the settings, so none of them is on show).
  function markPresets(values) {
    for (const button of presetBox.querySelectorAll("button")) {
      const on = values !== null && button.dataset.f === String(values.f) &&
        button.dataset.channels === String(values.channels);
      button.setAttribute("aria-pressed", String(on));
    }
  }

  function renderPresets(presets) {
    if (presetBox.childElementCount) return;
    presetBox.replaceChildren(...presets.map((p) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.preset = p.key;
      button.dataset.f = String(p.f);
      button.dataset.channels = String(p.channels);
      button.title = p.note;
      button.textContent = `${p.name} · f = ${p.f}, c_z = ${p.channels}`;
      button.addEventListener("click", () => controls.write({ f: String(p.f), channels: String(p.channels) }));
      return button;
    }));
  }

  async function update(values) {
    markPresets(values);
    try {
      const r = await Lab.getJSON(ENDPOINT, values);
      Lab.markStale(figures, errorBox);
      renderPresets(r.presets);
      markPresets(values);
      showReadouts(r);
      drawBars(r);
      drawCurve(r);
    } catch (err) {
      if (Lab.isAbort(err)) return;
      markPresets(null);
      Lab.markStale(figures, errorBox, err.message);
    }
  }

  const controls = Lab.bindControls(form, update);
  controls.fire();
})();

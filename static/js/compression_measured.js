// Latent-vs-pixel instrument, "measured here": the served model's VAE and one DiT forward on the latent vs on
// pixels, from GET /api/v1/instruments/compression/measured (asked only when the model is loaded).
"use strict";

(() => {
  const MINT = "#5ee6b0";
  const GREY = "#9aa7b4";
  const $ = (id) => document.getElementById(id);
  const status = $("measured-status");
  const grid = (g) => g.join(" × ");

  function showCard(card) {
    const arch = card && card.architecture;
    if (arch) {
      Lab.setText("me-ratio", Lab.fmt(arch.compression_ratio, 3));
      const [c, h, w] = arch.latent_shape;
      Lab.setText("me-shapes", `${arch.resolution} × ${arch.resolution} × 3 → ${h} × ${w} × ${c}, f = ${arch.downsample_factor}`);
    }
    const vae = card && card.evaluation && card.evaluation.vae;
    if (vae) {
      Lab.setText("me-psnr", Lab.fmt(vae.psnr_db_mean, 3));
      Lab.setText("me-psnr-source", `mean of ${vae.scenes} held-out scenes, from the model card`);
    }
  }

  function showTiming(m) {
    Lab.setText("me-ratio", Lab.fmt(m.ratio, 3));
    Lab.setText("me-shapes", `${m.resolution} × ${m.resolution} × 3 → ${grid(m.latent.grid)}, f = ${m.f}`);
    if (m.psnr_db !== null) Lab.setText("me-psnr", Lab.fmt(m.psnr_db, 3));
    Lab.setText("me-psnr-source", m.psnr_source);
    Lab.setText("me-latent-ms", Lab.fmt(m.latent.median_ms, 1));
    Lab.setText("me-latent-tokens", `${grid(m.latent.grid)} grid, ${Lab.fmt(m.latent.tokens)} tokens, trained weights`);
    const byPatch = Object.fromEntries(m.pixel.map((p) => [p.patch, p]));
    for (const patch of [2, 1]) {
      const p = byPatch[patch];
      if (!p) continue;
      Lab.setText(`me-p${patch}-ms`, Lab.fmt(p.median_ms, 1));
      Lab.setText(`me-p${patch}-tokens`, `${grid(p.grid)} grid, ${Lab.fmt(p.tokens)} tokens, random weights` +
        (p.estimated ? "; estimated: one block timed × depth" : ""));
    }
    if (byPatch[2]) Lab.setText("me-speedup", Lab.fmt(byPatch[2].median_ms / m.latent.median_ms, 1));
    if (byPatch[1]) Lab.setText("me-speedup-p1", Lab.fmt(byPatch[1].median_ms / m.latent.median_ms, 0));
    const rows = [m.latent, ...m.pixel];
    const labels = rows.map((r) => `${r.weights === "trained" ? "latent" : `pixels, p = ${r.patch}`}<br>${Lab.fmt(r.tokens)} tokens`);
    Plotly.react("measured-chart", [{
      x: labels, y: rows.map((r) => r.median_ms), type: "bar",
      marker: { color: rows.map((r) => (r.weights === "trained" ? MINT : GREY)) },
      text: rows.map((r) => `${Lab.fmt(r.median_ms, 1)} ms${r.estimated ? " (est.)" : ""}`), textposition: "outside",
      cliponaxis: false, hovertemplate: "%{y:.2f} ms<extra></extra>",
    }], Lab.plotLayout({
      yaxis: { type: "log", dtick: 1, title: { text: "ms per forward (log scale)" }, gridcolor: "#2a3440",
        range: [Math.log10(Math.min(...rows.map((r) => r.median_ms))) - 0.5,
          Math.log10(Math.max(...rows.map((r) => r.median_ms))) + 0.7] },
      showlegend: false,
    }), Lab.plotConfig);
    Lab.setText("measured-note", `DiT of width ${m.dit.width}, depth ${m.dit.depth}, ${m.dit.heads} heads ` +
      `(${m.dit.parameters.toLocaleString("en-US")} parameters) on ${m.device} with ${m.torch_threads} torch thread(s); ` +
      `${m.cached ? "measured earlier by this server process" : "measured just now"} (${m.measured_at}, ` +
      `${Lab.fmt(m.measured_s, 2)} s). Wall times on a shared CPU move with its load; the ratios hold better.`);
  }

  async function start() {
    let model;
    try {
      model = await Lab.getJSON("/api/v1/model", {}, "measured-model");
    } catch (err) {
      if (!Lab.isAbort(err)) status.textContent = err.message;
      return;
    }
    showCard(model.card);
    if (!model.live.loaded) {
      status.textContent = "The model is not loaded on this server, so its forward pass cannot be timed here" +
        (model.card ? "; the VAE's numbers come from the model card." : ".");
      return;
    }
    status.textContent = "Timing one forward pass on the latent and on pixels (about 2 s, once per server)…";
    try {
      const m = await Lab.getJSON("/api/v1/instruments/compression/measured");
      showTiming(m);
      status.textContent = `One denoising step on ${grid(m.latent.grid)} latent tokens vs the image's pixels, ` +
        "timed on this server.";
    } catch (err) {
      if (!Lab.isAbort(err)) status.textContent = err.message;
    }
  }

  start();
})();

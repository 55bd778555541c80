// Latent-vs-pixel instrument, "measured here": the served model's VAE and one guided step's DiT forward on the
// latent vs on pixels, from GET /api/v1/instruments/compression/measured (asked only when the model is loaded),
// with the spread of the rounds, the load, the recorded benchmarks, and a Re-measure button.
"use strict";

(() => {
  const MINT = "#5ee6b0";
  const GREY = "#9aa7b4";
  const $ = (id) => document.getElementById(id);
  const status = $("measured-status");
  const remeasure = $("measured-remeasure");
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

  function showForward(id, f, rounds, what) {
    Lab.setText(`me-${id}-ms`, Lab.fmt(f.median_ms, 1));
    Lab.setText(`me-${id}-spread`, Timing.spread(f, rounds));
    Lab.setText(`me-${id}-tokens`, `${grid(f.grid)} grid, ${Lab.fmt(f.tokens)} tokens, ${what}` +
      (f.estimated ? `; estimated: ${f.basis}` : ""));
    Lab.setText(`me-${id}-recorded`, Timing.recorded(f.recorded, f.recorded_note));
  }

  function showTiming(m) {
    const rounds = m.conditions.rounds;
    Lab.setText("me-ratio", Lab.fmt(m.ratio, 3));
    Lab.setText("me-shapes", `${m.resolution} × ${m.resolution} × 3 → ${grid(m.latent.grid)}, f = ${m.f}`);
    if (m.psnr_db !== null) Lab.setText("me-psnr", Lab.fmt(m.psnr_db, 3));
    Lab.setText("me-psnr-source", m.psnr_source);
    showForward("latent", m.latent, rounds, "trained weights");
    const byPatch = Object.fromEntries(m.pixel.map((p) => [p.patch, p]));
    const savings = Object.fromEntries(m.pixel.map((p, i) => [p.patch, m.savings[i]]));
    for (const patch of [2, 1]) {
      if (byPatch[patch]) showForward(`p${patch}`, byPatch[patch], rounds, "random weights");
    }
    if (savings[2]) Timing.showRatio("me-speedup", "me-speedup-unit", savings[2], savings[2].ratio, 1, "× faster than patch 2");
    if (savings[1]) Timing.showRatio("me-speedup-p1", "me-speedup-p1-unit", savings[1], savings[1].ratio, 0, "× faster than patch 1");
    const conditions = $("measured-conditions");
    conditions.textContent = Timing.conditions(m.conditions);
    conditions.classList.toggle("timing-noisy", m.conditions.noisy);
    Lab.setText("measured-verdicts", m.savings.map(Timing.verdict).join(" "));
    const rows = [m.latent, ...m.pixel];
    const labels = rows.map((r) => `${r.weights === "trained" ? "latent" : `pixels, p = ${r.patch}`}<br>${Lab.fmt(r.tokens)} tokens`);
    const recorded = rows.map((r) => (r.recorded ? r.recorded.median_ms : null));
    Plotly.react("measured-chart", [{
      x: labels, y: rows.map((r) => r.median_ms), type: "bar", name: "measured here (median)",
      marker: { color: rows.map((r) => (r.weights === "trained" ? MINT : GREY)) },
      error_y: Timing.errorBars(rows),
      text: rows.map((r) => `${Lab.fmt(r.median_ms, 1)} ms${r.estimated ? " (est.)" : ""}`), textposition: "outside",
      cliponaxis: false, hovertemplate: "median %{y:.2f} ms<extra></extra>",
    }, {
      x: labels, y: recorded, type: "scatter", mode: "markers", name: "recorded benchmark",
      marker: { symbol: "diamond", size: 11, color: "#ffb454" }, hovertemplate: "recorded %{y:.2f} ms<extra></extra>",
    }], Lab.plotLayout({
      yaxis: { type: "log", dtick: 1, title: { text: "ms per forward (log scale)" }, gridcolor: "#2a3440",
        range: [Math.log10(Math.min(...rows.map((r) => r.low_ms))) - 0.5,
          Math.log10(Math.max(...rows.map((r) => r.high_ms))) + 0.7] },
      showlegend: true,
    }), Lab.plotConfig);
    Lab.setText("measured-note", `DiT of width ${m.dit.width}, depth ${m.dit.depth}, ${m.dit.heads} heads ` +
      `(${m.dit.parameters.toLocaleString("en-US")} parameters), ${m.batch} rows per forward, on ${m.device} with ` +
      `${m.torch_threads} torch thread(s); ${Timing.when(m)}, ${Lab.fmt(m.measured_s, 2)} s in all. ` +
      "Wall times on a shared CPU move with its load; the ratios hold better.");
  }

  async function measure(remeasure = false) {
    status.textContent = remeasure
      ? "Measuring again: the three forwards in interleaved rounds (a few seconds, as a job of the queue)…"
      : "Timing one step's forward on the latent and on pixels (a few seconds, once per server)…";
    try {
      const m = await Lab.getJSON("/api/v1/instruments/compression/measured", remeasure ? { remeasure: true } : {});
      showTiming(m);
      status.textContent = `One denoising step on ${grid(m.latent.grid)} latent tokens vs the image's pixels, ` +
        `timed on this server, ${Timing.when(m)}.`;
    } catch (err) {
      if (!Lab.isAbort(err)) status.textContent = err.message;
    }
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
    await measure();
    remeasure.disabled = false;
  }

  Timing.remeasureButton(remeasure, measure);
  start();
})();

// Denoising walk (EQ MM3.1-3.2): the chapter's first snippet, computed by /api/v1/instruments/denoising.
"use strict";

(() => {
  const ENDPOINT = "/api/v1/instruments/denoising";
  const MINT = "#5ee6b0";
  const AMBER = "#ffb454";
  const MUTED = "#9aa7b4";
  const PRESETS = {
    snippet: { target_x: 1.5, target_y: -0.8, steps: 40, beta_start: 0.001, beta_end: 0.08, seed: 0, eps_error: 0 },
    ddpm: { steps: 1000, beta_start: 0.0001, beta_end: 0.02, eps_error: 0 },
    few: { steps: 4, beta_start: 0.2, beta_end: 0.5, eps_error: 0 },
    weak: { steps: 40, beta_start: 0.0001, beta_end: 0.002, eps_error: 0 },
    noisy: { steps: 40, beta_start: 0.001, beta_end: 0.08, eps_error: 0.3 },
  };

  const form = document.getElementById("denoising-form");
  const errorBox = document.getElementById("denoising-error");
  const figures = document.querySelectorAll("[data-figures]");
  const column = (points, i) => points.map((p) => p[i]);
  const pair = (p, digits = 4) => `[${p.map((x) => Lab.fmt(x, digits)).join(", ")}]`;

  // The view frames the walk, the target and the probe cloud; a wild x̂0 (bad schedule, noisy denoiser) may fall outside.
  function frame(points) {
    const xs = column(points, 0);
    const ys = column(points, 1);
    const cx = (Math.min(...xs) + Math.max(...xs)) / 2;
    const cy = (Math.min(...ys) + Math.max(...ys)) / 2;
    const half = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 2) / 2 + 0.5;
    return { x: [cx - half, cx + half], y: [cy - half, cy + half] };
  }

  function drawPath(r) {
    const w = r.walk;
    const view = frame([...w.x_t, r.target, ...r.forward.cloud]);
    const traces = [
      {
        x: column(r.forward.cloud, 0), y: column(r.forward.cloud, 1), type: "scatter", mode: "markers",
        name: `x_t drawn at ᾱ = ${Lab.fmt(r.forward.abar, 2)}`, marker: { color: "rgba(154,167,180,0.3)", size: 4 },
        hoverinfo: "skip",
      },
      {
        x: column(w.x_t, 0), y: column(w.x_t, 1), type: "scatter", mode: "lines+markers", name: "x_t (walk)",
        text: ["start x_T", ...w.t.map((t) => `after step t = ${t}`)],
        line: { color: MINT, width: 1.5 },
        marker: { size: 6, color: w.x_t.map((_, i) => i), colorscale: "Viridis", showscale: false },
      },
      {
        x: column(w.x0_hat, 0), y: column(w.x0_hat, 1), type: "scatter", mode: "markers", name: "x̂0 per step",
        text: w.t.map((t) => `x̂0 at t = ${t}`), marker: { symbol: "x-thin", size: 9, line: { width: 2, color: AMBER } },
      },
      {
        x: [w.x_t[0][0]], y: [w.x_t[0][1]], type: "scatter", mode: "markers", name: "start (noise)",
        marker: { symbol: "circle-open", size: 14, color: "#e6edf3", line: { width: 2 } },
      },
      {
        x: [r.target[0]], y: [r.target[1]], type: "scatter", mode: "markers", name: "target x0",
        marker: { symbol: "star", size: 16, color: MINT },
      },
    ];
    const layout = Lab.plotLayout({
      xaxis: { range: view.x, gridcolor: "#2a3440", title: { text: "latent 1" }, constrain: "domain" },
      yaxis: { range: view.y, gridcolor: "#2a3440", scaleanchor: "x", title: { text: "latent 2" } },
      height: 440,
    });
    Plotly.react("denoising-path", traces, layout, Lab.plotConfig);
  }

  function drawSchedule(r) {
    const s = r.schedule;
    const traces = [
      { x: s.t, y: s.abar, type: "scatter", mode: "lines", name: "ᾱ_t (signal fraction)", line: { color: "#e6edf3" } },
      { x: s.t, y: s.sqrt_abar, type: "scatter", mode: "lines", name: "√ᾱ_t (on x0)", line: { color: MINT } },
      { x: s.t, y: s.sqrt_one_minus_abar, type: "scatter", mode: "lines", name: "√(1−ᾱ_t) (on ε)",
        line: { color: AMBER } },
      { x: [r.forward.nearest_t], y: [r.forward.nearest_abar], type: "scatter", mode: "markers",
        name: `nearest step to ᾱ = ${Lab.fmt(r.forward.abar, 2)}`,
        marker: { size: 12, symbol: "circle-open", color: "#e6edf3", line: { width: 3 } } },
    ];
    const layout = Lab.plotLayout({
      xaxis: { title: { text: "timestep t (the walk runs right to left)" }, gridcolor: "#2a3440",
        dtick: s.t.length <= 20 ? 1 : undefined },
      yaxis: { range: [0, 1.05], gridcolor: "#2a3440" },
      legend: { orientation: "h", y: -0.28 },
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: r.forward.nearest_t, x1: r.forward.nearest_t, y0: 0,
        y1: 1, line: { color: MUTED, dash: "dot" } }],
    });
    Plotly.react("denoising-schedule", traces, layout, Lab.plotConfig);
  }

  function showReadouts(r) {
    Lab.setText("ro-recovered", pair(r.recovered, 3));
    Lab.setText("ro-l2", Lab.fmt(r.l2_error, 4));
    Lab.setText("ro-abar", `${Lab.fmt(r.abar_start, 3)} → ${Lab.fmt(r.abar_end, 3)}`);
    Lab.setText("ro-kl", Lab.fmt(r.prior_kl, 3));
    Lab.setText("ro-signal", Lab.fmt(r.forward.sqrt_abar, 4));
    Lab.setText("ro-noise", Lab.fmt(r.forward.sqrt_one_minus_abar, 4));
    Lab.setText("ro-probe", `ᾱ = ${Lab.fmt(r.forward.abar, 2)}, closest to step t = ${r.forward.nearest_t} of this schedule`);
    Lab.setText("printout", r.printout.join("\n"));
  }

  async function update(values) {
    try {
      const r = await Lab.getJSON(ENDPOINT, values);
      Lab.markStale(figures, errorBox);
      showReadouts(r);
      drawPath(r);
      drawSchedule(r);
    } catch (err) {
      if (!Lab.isAbort(err)) Lab.markStale(figures, errorBox, err.message);
    }
  }

  const controls = Lab.bindControls(form, update);
  for (const button of form.querySelectorAll("button[data-preset]")) {
    button.addEventListener("click", () => controls.write(PRESETS[button.dataset.preset]));
  }
  controls.fire();

  // The snippet, run in the browser: its parameters become the instrument's (the panels above redraw the server's
  // walk for them), and the note says whether the browser's walk ended where the server's does.
  async function compareRun(values) {
    const { seed, target, T, beta, alpha_bar: abar, x } = Snippet.need(values,
      ["seed", "target", "T", "beta", "alpha_bar", "x"]);
    const params = { target_x: target[0], target_y: target[1], steps: T, beta_start: beta[0],
      beta_end: beta[beta.length - 1], seed, eps_error: 0 };
    const server = await Lab.getJSON(ENDPOINT, params, "snippet");
    controls.write(params);
    const settings = `T = ${T}, β from ${Lab.fmt(params.beta_start, 4)} to ${Lab.fmt(params.beta_end, 4)}, seed ${seed}`;
    const differ = Snippet.differences([
      { what: "the walk ended at", yours: x, server: server.recovered },
      { what: "ᾱ where it starts", yours: abar[abar.length - 1], server: server.abar_start },
      { what: "ᾱ at its last step", yours: abar[0], server: server.abar_end },
    ]);
    if (differ.length) {
      return { verdict: "differ", text: `Your edit changed the result: ${differ.join("; ")}. The server's walk ` +
        `(${settings}, a linear schedule, the exact oracle) is the one drawn above.` };
    }
    return { verdict: "agree", text: `Browser and server agree: with ${settings} both walks end at ` +
      `${pair(server.recovered, 4)}, with ᾱ = ${Lab.fmt(server.abar_start, 4)} where they start and ` +
      `${Lab.fmt(server.abar_end, 4)} at their last step; ` +
      "the panels above show the server's walk." };
  }

  Snippet.mount(document.getElementById("snippet"), { compare: compareRun });
})();

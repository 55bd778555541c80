// Guidance scale (INSTRUMENT MM3.2, EQ MM3.4): every number and dot comes from /api/v1/instruments/guidance.
"use strict";

(() => {
  const ENDPOINT = "/api/v1/instruments/guidance";
  const TABLE = "/api/v1/instruments/guidance/table";
  const GREY = "rgba(154, 167, 180, 0.45)";
  const MINT = "#5ee6b0";
  const AMBER = "#ffb454";
  const PLANE = 8; // half-width of the latent plane drawn: even s = 20 samples (max ~7.6 measured) stay inside

  const form = document.getElementById("guidance-form");
  const errorBox = document.getElementById("guidance-error");
  const figures = document.querySelectorAll("[data-figures]");
  const rgb = (c) => `rgb(${c.join(",")})`;
  const pct = (x) => Lab.fmt(100 * x, 1);
  const vec = (v) => `[${v.map((x) => Lab.fmt(x, 3)).join(", ")}]`;
  const column = (points, i) => points.map((p) => p[i]);
  let snippetInputs = null; // the vectors and scales of the reader's last run of the snippet; null: the chapter's

  function drawScatter(r) {
    const prompt = r.classes.find((c) => c.name === r.prompt_class);
    const traces = [
      {
        x: column(r.uncond_points, 0), y: column(r.uncond_points, 1), type: "scatter", mode: "markers",
        name: "s = 0 (prompt ignored)", marker: { color: GREY, size: 5 }, hoverinfo: "skip",
      },
      {
        x: column(r.guided_points, 0), y: column(r.guided_points, 1), type: "scatter", mode: "markers",
        name: `s = ${Lab.fmt(r.scale)} (guided)`,
        marker: { color: rgb(prompt.rgb), size: 6, line: { color: "#0f1419", width: 0.5 } },
      },
      {
        x: r.classes.map((c) => c.mean[0]), y: r.classes.map((c) => c.mean[1]), type: "scatter",
        mode: "markers+text", name: "class means", text: r.classes.map((c) => c.name), textposition: "top center",
        textfont: { color: "#e6edf3" },
        marker: { symbol: "x-thin", size: 12, line: { width: 2, color: r.classes.map((c) => rgb(c.rgb)) } },
      },
    ];
    const rad = r.data_cloud_radius;
    const layout = Lab.plotLayout({
      xaxis: { range: [-PLANE, PLANE], zeroline: false, gridcolor: "#2a3440", title: { text: "latent 1" },
        constrain: "domain" },
      yaxis: { range: [-PLANE, PLANE], zeroline: false, gridcolor: "#2a3440", scaleanchor: "x",
        title: { text: "latent 2" } },
      shapes: [{
        type: "circle", xref: "x", yref: "y", line: { color: rgb(prompt.rgb), dash: "dash", width: 1.5 },
        x0: prompt.mean[0] - rad, x1: prompt.mean[0] + rad, y0: prompt.mean[1] - rad, y1: prompt.mean[1] + rad,
      }],
      annotations: [{
        x: r.arrow.end[0], y: r.arrow.end[1], ax: r.arrow.start[0], ay: r.arrow.start[1],
        xref: "x", yref: "y", axref: "x", ayref: "y", showarrow: true, arrowhead: 3, arrowsize: 1.2,
        arrowwidth: 3, arrowcolor: MINT, text: "",
      }],
      height: 540,
    });
    Plotly.react("guidance-scatter", traces, layout, Lab.plotConfig);
  }

  function drawCurve(r) {
    const c = r.curve;
    const traces = [
      {
        x: c.scales, y: c.adherence.map((a) => 100 * a), type: "scatter", mode: "lines+markers",
        name: "adherence (% on-prompt)", line: { color: MINT },
      },
      {
        x: c.scales, y: c.diversity, type: "scatter", mode: "lines+markers", yaxis: "y2",
        name: "diversity (RMS spread, latent units)", line: { color: AMBER },
      },
      {
        x: [r.scale], y: [100 * r.adherence], type: "scatter", mode: "markers", name: "your s: adherence",
        marker: { color: MINT, size: 13, symbol: "circle-open", line: { width: 3 } },
      },
      {
        x: [r.scale], y: [r.diversity], yaxis: "y2", type: "scatter", mode: "markers", name: "your s: diversity",
        marker: { color: AMBER, size: 13, symbol: "circle-open", line: { width: 3 } },
      },
    ];
    const layout = Lab.plotLayout({
      xaxis: { title: { text: "guidance scale s" }, gridcolor: "#2a3440", range: [-0.5, 20.5] },
      yaxis: { title: { text: "adherence (%)" }, range: [0, 105], gridcolor: "#2a3440" },
      yaxis2: Lab.rightAxis("diversity (latent units)"),
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: r.scale, x1: r.scale, y0: 0, y1: 1,
        line: { color: "#9aa7b4", dash: "dot" } }],
      margin: { l: 56, r: 56, t: 24, b: 48 },
      legend: { orientation: "h", y: -0.28 },
    });
    Plotly.react("guidance-curve", traces, layout, Lab.plotConfig);
  }

  function drawSnippet(sn) {
    Lab.setText("snippet-vectors", `ε∅ = ${vec(sn.eps_uncond)}, εc = ${vec(sn.eps_cond)}`);
    const rows = [...sn.rows];
    if (!rows.some((row) => row.scale === sn.current.scale)) rows.push(sn.current);
    rows.sort((a, b) => a.scale - b.scale);
    const body = document.getElementById("snippet-rows");
    body.replaceChildren(...rows.map((row) => {
      const tr = document.createElement("tr");
      if (row.scale === sn.current.scale) tr.className = "current";
      for (const text of [Lab.fmt(row.scale, 2), vec(row.guided), Lab.fmt(row.norm, 3)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }));
    const traces = [
      { x: sn.norm_curve.scales, y: sn.norm_curve.norm, type: "scatter", mode: "lines", name: "‖ε̃‖ over s",
        line: { color: AMBER } },
      { x: sn.rows.map((row) => row.scale), y: sn.rows.map((row) => row.norm), type: "scatter", mode: "markers",
        name: "the snippet's s", marker: { color: "#e6edf3", size: 8 } },
      { x: [sn.current.scale], y: [sn.current.norm], type: "scatter", mode: "markers", name: "your s",
        marker: { color: MINT, size: 13, symbol: "circle-open", line: { width: 3 } } },
    ];
    Plotly.react("guidance-norm", traces, Lab.plotLayout({
      xaxis: { title: { text: "guidance scale s" }, gridcolor: "#2a3440" },
      yaxis: { title: { text: "‖ε̃‖" }, gridcolor: "#2a3440", rangemode: "tozero" },
      legend: { orientation: "h", y: -0.28 },
    }), Lab.plotConfig);
  }

  function showReadouts(r) {
    Lab.setText("ro-regime", r.regime);
    Lab.setText("ro-adherence", pct(r.adherence));
    Lab.setText("ro-diversity", Lab.fmt(r.diversity, 3));
    Lab.setText("ro-beyond", pct(r.beyond_data));
    Lab.setText("ro-guided", Lab.fmt(r.worked_example.guided, 4));
    Lab.setText("ro-guided-norm", Lab.fmt(r.worked_example.norm, 4));
    Lab.setText("ro-class-std", Lab.fmt(r.class_std, 2));
    const sm = r.sampler;
    Lab.setText("ro-sampler", `${sm.name}, ${sm.steps} steps over a ${sm.train_steps}-step linear schedule`);
  }

  async function update(values) {
    try {
      const r = await Lab.getJSON(ENDPOINT, values);
      Lab.markStale(figures, errorBox);
      showReadouts(r);
      drawScatter(r);
      drawCurve(r);
      drawSnippet(snippetInputs ? await Lab.getJSON(TABLE, { ...snippetInputs, scale: r.scale }, TABLE) : r.snippet);
    } catch (err) {
      if (!Lab.isAbort(err)) Lab.markStale(figures, errorBox, err.message);
    }
  }

  const controls = Lab.bindControls(form, update);
  for (const button of form.querySelectorAll("button[data-scale]")) {
    button.addEventListener("click", () => controls.write({ scale: button.dataset.scale }));
  }
  controls.fire();

  // The snippet, run in the browser: the server computes EQ MM3.4 for the vectors and scales the run used, its table
  // replaces the one below, and the note says whether the browser's norms are the server's.
  async function compareRun(values) {
    const { eps_uncond, eps_cond, scales, norms } = Snippet.need(values, ["eps_uncond", "eps_cond", "scales", "norms"]);
    const inputs = { eps_uncond, eps_cond, scales };
    const table = await Lab.getJSON(TABLE, { ...inputs, scale: controls.read().scale }, "snippet run");
    snippetInputs = inputs;
    drawSnippet(table);
    const differ = Snippet.differences(scales.map((s, i) => (
      { what: `‖ε̃‖ at s = ${Lab.fmt(s)}`, yours: norms[i], server: table.rows[i].norm })));
    const vectors = `ε∅ = ${vec(table.eps_uncond)} and εc = ${vec(table.eps_cond)}`;
    if (differ.length) {
      return { verdict: "differ", text: `Your edit changed the result: ${differ.join("; ")}. The server's table ` +
        `below applies EQ MM3.4 as written to ${vectors}.` };
    }
    return { verdict: "agree", text: `Browser and server agree: for ${vectors}, EQ MM3.4 on the server gives the ` +
      `same ‖ε̃‖ at all ${scales.length} scales (${table.rows.map((row) => Lab.fmt(row.norm, 3)).join(", ")}); its ` +
      "table is below." };
  }

  Snippet.mount(document.getElementById("snippet"), { compare: compareRun });
})();

// /generate, guidance grid: one prompt at several guidance scales (EQ MM3.4) x seeds, measured per column.
"use strict";

(() => {
  const ENDPOINT = "/api/v1/generate/grid";
  const MINT = "#5ee6b0";
  const AMBER = "#ffb454";
  const $ = (id) => document.getElementById(id);
  const panel = $("grid-panel");
  if (!panel) return;
  const drawButton = $("grid-draw");
  const status = $("grid-status");
  const errorBox = $("grid-error");
  const table = $("grid-table");
  const rows = $("grid-rows");

  // The generate form's current values for its family, read by name (GeneratePage.read() when the page offers it).
  function formValues() {
    // GeneratePage is a top-level const of generate.js: a global binding, not a property of window.
    if (typeof GeneratePage !== "undefined" && typeof GeneratePage.read === "function") {
      const values = GeneratePage.read();
      if (values && values.prompt !== undefined) return values;
    }
    const values = {};
    for (const name of ["prompt", "negative_prompt", "seed", "family", "steps", "sampler", "guidance_method"]) {
      const field = document.querySelector(`#generate-form [name="${name}"], [name="${name}"]`);
      if (field) values[name] = field.value;
    }
    return values;
  }

  function parseScales(text) {
    const parts = text.split(/[,\s;]+/).filter((p) => p !== "");
    const scales = parts.map(Number);
    const bad = parts.find((p, i) => !Number.isFinite(scales[i]));
    if (bad !== undefined) throw new Error(`scales: “${bad}” is not a number`);
    return scales;
  }

  // The family's own knobs the grid takes, as the form has them (a knob of another family is not in the values).
  const NUMBERS = ["steps", "temperature", "top_k", "rounds"];
  const WORDS = ["sampler", "guidance_method"];

  function request() {
    const v = formValues();
    const body = {
      prompt: v.prompt || "", negative_prompt: v.negative_prompt || "", family: v.family || "diffusion",
      scales: parseScales($("grid-scales").value), seeds: Number(rows.value),
    };
    for (const name of [...NUMBERS, ...WORDS, "seed"]) {
      if (v[name] !== undefined && v[name] !== "") body[name] = WORDS.includes(name) ? v[name] : Number(v[name]);
    }
    return body;
  }

  function cell(tag, content, scope) {
    const el = document.createElement(tag);
    if (scope) el.scope = scope;
    if (content instanceof Node) el.append(content);
    else el.textContent = content;
    return el;
  }

  function image(b64, alt) {
    const img = document.createElement("img");
    img.className = "pixelated";
    img.src = `data:image/png;base64,${b64}`;
    img.width = 72;
    img.height = 72;
    img.alt = alt;
    return img;
  }

  const pct = (x) => `${Lab.fmt(100 * x, 1)} %`;

  function drawTable(r) {
    const head = document.createElement("tr");
    head.append(cell("th", "seed", "col"), ...r.columns.map((c) => cell("th", `s = ${Lab.fmt(c.scale)}`, "col")));
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(...r.seeds.map((seed, i) => {
      const tr = document.createElement("tr");
      tr.append(cell("th", String(seed), "row"));
      for (const c of r.columns) {
        const im = c.images[i];
        const seen = Lab.judgedText(im.judged, im.objects);
        tr.append(cell("td", image(im.png_base64, `s = ${c.scale}, seed ${seed}: the judge sees ${seen}`)));
      }
      return tr;
    }));
    const adherence = document.createElement("tr");
    adherence.className = "grid-adherence";
    adherence.append(cell("th", "adherence (all named)", "row"), ...r.columns.map((c) => cell("td", pct(c.adherence.all))));
    const diversity = document.createElement("tr");
    diversity.className = "grid-diversity";
    diversity.append(cell("th", "diversity (RMS)", "row"), ...r.columns.map((c) => cell("td", Lab.fmt(c.diversity_rms, 3))));
    table.tFoot.replaceChildren(adherence, diversity);
    table.hidden = false;
  }

  // Plotly is large: the page may not have loaded it; fetch it from this server the first time a chart is drawn.
  function plotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = `${Lab.base()}/vendor/plotly.min.js`;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("could not load the chart library"));
      document.head.append(script);
    });
  }

  async function drawChart(r) {
    const chart = $("grid-chart");
    chart.hidden = false;
    const s = r.columns.map((c) => c.scale);
    const traces = [
      { x: s, y: r.columns.map((c) => 100 * c.adherence.all), type: "scatter", mode: "lines+markers",
        name: "adherence (% all named attributes right)", line: { color: MINT } },
      { x: s, y: r.columns.map((c) => c.diversity_rms), type: "scatter", mode: "lines+markers", yaxis: "y2",
        name: "diversity (mean pairwise RMS)", line: { color: AMBER } },
    ];
    const P = await plotly();
    P.react(chart, traces, Lab.plotLayout({
      xaxis: { title: { text: "guidance scale s" }, gridcolor: "#2a3440" },
      yaxis: { title: { text: "adherence (%)" }, range: [0, 105], gridcolor: "#2a3440" },
      yaxis2: Lab.rightAxis("diversity (RMS, pixels 0–1)"),
      margin: { l: 56, r: 56, t: 24, b: 48 },
      legend: { orientation: "h", y: -0.28 },
    }), Lab.plotConfig);
  }

  async function draw() {
    let body;
    try {
      body = request();
    } catch (err) {
      errorBox.textContent = err.message;
      return;
    }
    errorBox.textContent = "";
    drawButton.disabled = true;
    const images = body.scales.length * body.seeds;
    const cost = body.steps ? `${body.steps} steps` : `the ${body.family} family`;
    status.textContent = `Drawing ${images} images (${body.scales.length} scales × ${body.seeds} seeds, ${cost})…`;
    try {
      const r = await Lab.postJSON(ENDPOINT, body);
      drawTable(r);
      status.textContent = `Drew ${images} images in ${Lab.fmt(r.timings.total_s, 2)} s ` +
        `(${r.timings.batch_jobs > 1 ? `sharing a batch with ${r.timings.batch_jobs - 1} other request(s), ` : ""}` +
        `${r.timings.network_forwards} network forwards for all of them), for “${r.prompt_canonical || "(empty)"}”.`;
      await drawChart(r);
    } catch (err) {
      if (Lab.isAbort(err)) return;
      errorBox.textContent = err.message;
      status.textContent = "";
    } finally {
      drawButton.disabled = false;
    }
  }

  rows.addEventListener("input", () => { $("grid-rows-out").textContent = rows.value; });
  $("grid-form").addEventListener("submit", (e) => { e.preventDefault(); draw(); });
  drawButton.addEventListener("click", draw);

  // Without a loaded model there is nothing to draw: say so instead of letting the request fail.
  Lab.getJSON("/api/v1/model", {}, "grid-model").then((m) => {
    if (!m.live.loaded) {
      drawButton.disabled = true;
      status.textContent = "The model is not loaded on this server, so the grid cannot be drawn.";
    }
  }).catch((err) => { if (!Lab.isAbort(err)) errorBox.textContent = err.message; });
})();

// Autoregressive & masked models (chapter §3.4): the three families drawing one prompt side by side over the
// generation stream (GET /api/v1/generate/stream with `family`), what the judge reads in each picture, the
// autoregressive model's bits for every token (EQ MM3.5), the codebook's ceiling, and the cost against N timed on
// this server, from the endpoints under /api/v1/instruments/families.
"use strict";

(() => {
  const API = "/api/v1/instruments/families";
  const STREAM = "/api/v1/generate/stream";
  const FAMILIES = ["autoregressive", "masked", "diffusion"];
  const NAMES = { autoregressive: "autoregressive", masked: "masked", diffusion: "diffusion" };
  const TITLES = { autoregressive: "Autoregressive", masked: "Masked", diffusion: "Diffusion" };
  const COLOURS = { autoregressive: "#ffb454", masked: "#5ee6b0", diffusion: "#6cb6ff" };
  const SYMBOLS = { autoregressive: "circle", masked: "square", diffusion: "diamond" };
  const COST_ROUNDS = 3;
  const $ = (id) => document.getElementById(id);
  const dataURL = (b64) => `data:image/png;base64,${b64}`;
  const percent = (x) => `${Lab.fmt(100 * x, 1)}%`;
  const seconds = (x) => `${Lab.fmt(x, 3)} s`;

  const form = $("families-form");
  const controls = Lab.bindControls(form, () => {}); // the URL keeps the prompt and seed; nothing runs on a change
  let families = null; // family -> its state, from GET /instruments/families
  const pictures = {}; // family -> {png, prompt, tokens} of its last picture, for the likelihood panel
  let run = null; // {stopped, stream} while the three draw

  // ------------------------------------------------------------------ what is loaded

  function sizeText(f) {
    const z = f.size;
    const net = `width ${z.width}, depth ${z.depth}, ${z.heads} heads, ${Lab.fmt(z.parameters)} parameters`;
    const grid = `${z.grid} × ${z.grid} = ${Lab.fmt(z.tokens)} tokens`;
    if (f.family === "diffusion") {
      return `${z.resolution} px images; a DiT on ${grid} (latent cells, f = ${z.downsample_factor}, in patches of ` +
        `${z.patch}); ${net}; model ${f.model_id}.`;
    }
    return `${z.resolution} px images; ${grid}, each one of K = ${Lab.fmt(z.codebook_size)} codes standing for ` +
      `${z.downsample_factor} × ${z.downsample_factor} pixels; ${net}; model ${f.model_id}.`;
  }

  function showFamilies(answer) {
    families = Object.fromEntries(answer.families.map((f) => [f.family, f]));
    for (const f of answer.families) {
      const missing = $(`missing-${f.family}`);
      missing.hidden = f.loaded;
      missing.textContent = f.loaded ? "" : `Not loaded: ${f.reason}.`;
      Lab.setText(`size-${f.family}`, f.loaded ? sizeText(f) : "");
    }
    const absent = answer.families.filter((f) => !f.loaded);
    $("families-draw").disabled = absent.length === answer.families.length;
    const note = $("families-status");
    note.hidden = !absent.length;
    note.textContent = absent.length
      ? `Not loaded on this server: ${absent.map((f) => NAMES[f.family]).join(", ")} (each column says why). ` +
        "The panels that need a missing model say so; the equation and the questions work without any."
      : "";
  }

  // ------------------------------------------------------------------ the three, side by side

  // A step's picture so far: diffusion's predicted clean image x̂0, or a token family's grid so far, decoded.
  const previewOf = (step) => (step.previews ? step.previews.x0_hat : step.preview) || null;

  // Where a step is: "step 3 of 8", and for a token family how much of its grid is drawn by how many forwards.
  function progressText(step, grid) {
    const where = Lab.stepLabel(step.index, step.total);
    if (step.forwards === undefined) return where;
    const of = grid ? ` of ${Lab.fmt(grid.tokens)}` : "";
    return `${where} · ${Lab.fmt(step.tokens_drawn)}${of} tokens drawn in ${Lab.fmt(step.forwards)} forwards`;
  }

  function streamParams(family, values) {
    const params = { prompt: values.prompt, previews: true };
    if (values.seed !== "") params.seed = values.seed;
    if (family === "diffusion") params.steps = values.steps; // diffusion is the default family: no `family` sent
    else params.family = family;
    if (family === "masked") params.rounds = values.rounds;
    return params;
  }

  function resetColumn(family) {
    $(`progress-${family}`).value = 0;
    Lab.setText(`progress-${family}-text`, "waiting…");
    for (const id of ["forwards", "sampling", "total", "judged", "verdict"]) Lab.setText(`${id}-${family}`, "–");
  }

  function verdictText(adherence) {
    if (adherence.all === 1) return "yes: everything it names, in one clean picture";
    const missed = Object.entries(adherence).filter(([k, v]) => k !== "all" && v < 1).map(([k]) => k);
    return `no: ${missed.length ? missed.join(", ") : "not every attribute"}`;
  }

  async function judge(family, prompt, png) {
    Lab.setText(`judged-${family}`, "judging…");
    try {
      const v = await Lab.postJSON(`${API}/judge`, { prompt, png_base64: png }, `judge-${family}`);
      Lab.setText(`judged-${family}`, Lab.judgedText(v.judged, v.objects));
      Lab.setText(`verdict-${family}`, verdictText(v.adherence));
    } catch (err) {
      if (!Lab.isAbort(err)) Lab.setText(`judged-${family}`, `not judged: ${err.message}`);
    }
  }

  function showResult(family, prompt, result, grid) {
    const image = result.images[0];
    const pic = $(`pic-${family}`);
    pic.src = dataURL(image.png_base64);
    pic.alt = `The ${NAMES[family]} model's picture for ` +
      `${result.prompt_canonical ? `“${result.prompt_canonical}”` : "no caption"}, seed ${image.seed}`;
    pic.hidden = false;
    const t = result.timings;
    Lab.setText(`forwards-${family}`, Lab.fmt(t.network_forwards));
    Lab.setText(`sampling-${family}`, seconds(t.sampling_s));
    Lab.setText(`total-${family}`, seconds(t.total_s));
    // A token family's own tokens when its stream sent the whole grid (the last step's), else its picture.
    const tokens = Array.isArray(grid) && !grid.includes(-1) ? grid : null;
    pictures[family] = { png: image.png_base64, prompt, tokens };
    $("likelihood-source").querySelector(`option[value="${family}"]`).disabled = false;
    judge(family, prompt, image.png_base64);
  }

  // One family's stream; resolves with how it ended once it is over.
  function draw(family, values) {
    const bar = $(`progress-${family}`);
    const pic = $(`pic-${family}`);
    let grid = null; // a token family's grid so far, image 0's
    let shape = null; // the start event's token_grid (token families)
    return new Promise((resolve) => {
      run.stream = Lab.streamRun(STREAM, streamParams(family, values), {
        onStart(data) {
          bar.max = data.total_steps || 1;
          shape = data.token_grid || null;
          Lab.setText(`progress-${family}-text`, `started: ${data.total_steps} steps`);
        },
        onStep(step) {
          bar.max = step.total;
          bar.value = step.index + 1;
          if (Array.isArray(step.grid)) grid = step.grid;
          Lab.setText(`progress-${family}-text`, progressText(step, shape));
          const png = previewOf(step);
          if (png) {
            pic.src = dataURL(png);
            pic.alt = `The ${NAMES[family]} model's picture so far, ${Lab.stepLabel(step.index, step.total)}`;
            pic.hidden = false;
          }
        },
        onResult(result) {
          bar.value = bar.max;
          Lab.setText(`progress-${family}-text`, "done");
          showResult(family, values.prompt, result, grid);
        },
        onEnd(how, message, err) {
          run.stream = null;
          if (how !== "result") Lab.setText(`progress-${family}-text`, message ? `stopped: ${message}` : how);
          if (message) run.errors.push(`${NAMES[family]}: ${message}`);
          if (err && err.detail) Lab.showFieldErrors(form, err.detail); // a refused prompt, by its field
          $("families-error").textContent = run.errors.join(" ");
          resolve(how);
        },
      });
    });
  }

  function setRunning(running) {
    $("families-draw").disabled = running;
    $("families-cancel").disabled = !running;
    form.setAttribute("aria-busy", String(running));
  }

  async function drawAll() {
    if (run || !families) return;
    const values = controls.read();
    $("families-error").textContent = "";
    Lab.showFieldErrors(form, []);
    run = { stopped: false, stream: null, errors: [] };
    setRunning(true);
    const done = [];
    for (const family of FAMILIES) {
      if (run.stopped) break;
      if (!families[family].loaded) {
        Lab.setText(`progress-${family}-text`, "skipped: not loaded");
        continue;
      }
      resetColumn(family);
      $("families-run-status").textContent = `Drawing with the ${NAMES[family]} model…`;
      if ((await draw(family, values)) === "result") done.push(NAMES[family]);
    }
    const stopped = run.stopped;
    run = null;
    setRunning(false);
    $("families-run-status").textContent = stopped ? "Cancelled; the server stops the running job at its next step."
      : `Done: ${done.length ? done.join(", ") : "no model"} drew the prompt.`;
  }

  function cancel() {
    if (!run) return;
    run.stopped = true;
    if (run.stream) run.stream.cancel();
  }

  // ------------------------------------------------------------------ EQ MM3.5, token by token

  function showLikelihood(L, from) {
    const n = L.grid * L.grid;
    Lab.setText("lk-total", Lab.fmt(L.total_bits, 1));
    Lab.setText("lk-per-token", Lab.fmt(L.bits_per_token, 3));
    Lab.setText("lk-uniform", Lab.fmt(L.uniform_bits, 1));
    Lab.setText("lk-uniform-formula", `${Lab.fmt(n)} × log₂ ${Lab.fmt(L.codebook_size)}`);
    Lab.setText("lk-uncond", Lab.fmt(L.unconditional_bits, 1));
    Lab.setText("lk-saved", Lab.fmt(L.unconditional_bits - L.total_bits, 1));
    const what = {
      scene: `a scene drawn for the prompt: “${L.scene_caption}”`,
      tokens: `the ${NAMES[from]} model's own tokens, as it drew them`,
      image: `the ${NAMES[from]} model's picture, encoded again by the tokenizer`,
    }[L.source];
    const picture = $("lk-picture");
    picture.src = dataURL(L.picture_png_base64);
    picture.alt = `The picture scored: ${what}`;
    picture.hidden = false;
    Lab.setText("lk-picture-caption", `The picture scored: ${what}.`);
    const decoded = $("lk-decoded");
    decoded.src = dataURL(L.decoded_png_base64);
    decoded.alt = "The scored tokens decoded back to pixels";
    decoded.hidden = false;
    const bits = L.log2_probs.map((row) => row.map((v) => -v));
    const blind = L.uniform_bits / n; // log2 K: a blind guess's bits per token
    const top = Math.max(blind, ...bits.flat());
    const label = (r, c) => `token ${Lab.fmt(r * L.grid + c + 1)} (row ${r + 1}, column ${c + 1})`;
    Plotly.react("likelihood-chart", [{
      z: bits, type: "heatmap", colorscale: "Viridis", zmin: 0, zmax: top,
      x: bits[0].map((_, c) => c + 1), y: bits.map((_, r) => r + 1), // rows and columns counted from 1, as the text
      colorbar: { title: { text: "bits" } },
      text: L.tokens.map((row, r) => row.map((code, c) => `${label(r, c)}: code ${code}`)),
      hovertemplate: "%{text}<br>%{z:.2f} bits<extra></extra>",
    }], Lab.plotLayout({
      margin: { l: 40, r: 16, t: 16, b: 40 },
      xaxis: { title: { text: "column" }, constrain: "domain", showgrid: false },
      yaxis: { title: { text: "row" }, autorange: "reversed", scaleanchor: "x", showgrid: false },
    }), Lab.plotConfig);
    let most = [0, 0];
    bits.forEach((row, r) => row.forEach((b, c) => { if (b > bits[most[0]][most[1]]) most = [r, c]; }));
    const worse = bits.flat().filter((b) => b > blind).length;
    Lab.setText("likelihood-note", `${Lab.fmt(n)} tokens in raster order, token 1 at the top left. The costliest is ` +
      `${label(...most)} at ${Lab.fmt(bits[most[0]][most[1]], 2)} bits. A blind guess costs log₂ ` +
      `${L.codebook_size} = ${Lab.fmt(blind, 2)} bits a token; the model spends more than that on ${Lab.fmt(worse)} ` +
      `of the ${Lab.fmt(n)}. Conditioned on “${L.prompt_canonical || "no caption"}”; model ${L.model_id}.`);
  }

  async function score() {
    const from = $("likelihood-source").value;
    const picture = pictures[from];
    let body;
    if (from === "scene") {
      body = { prompt: controls.read().prompt, source: "scene", scene_seed: Number($("likelihood-seed").value) || 0 };
    } else if (picture.tokens) body = { prompt: picture.prompt, source: "tokens", tokens: picture.tokens };
    else body = { prompt: picture.prompt, source: "image", png_base64: picture.png };
    $("likelihood-status").textContent = "Scoring: one forward of the autoregressive model over every token…";
    try {
      showLikelihood(await Lab.postJSON(`${API}/likelihood`, body, "likelihood"), from);
      $("likelihood-error").textContent = "";
      $("likelihood-status").textContent = "Scored.";
    } catch (err) {
      if (Lab.isAbort(err)) return;
      $("likelihood-error").textContent = err.message;
      $("likelihood-status").textContent = "Not scored.";
    }
  }

  // ------------------------------------------------------------------ the codebook

  function showCodebook(c) {
    Lab.setText("cb-k", Lab.fmt(c.codebook_size));
    Lab.setText("cb-grid", `codes of ${c.code_dim} numbers; ${c.grid} × ${c.grid} = ${Lab.fmt(c.tokens)} tokens ` +
      `per ${c.resolution} px image`);
    Lab.setText("cb-used", Lab.fmt(c.codes_used));
    Lab.setText("cb-usage", percent(c.usage));
    Lab.setText("cb-dead", Lab.fmt(c.dead_codes));
    Lab.setText("cb-perplexity", Lab.fmt(c.perplexity, 1));
    Lab.setText("cb-vq-head", `VQ tokenizer (f = ${c.downsample_factor}, K = ${Lab.fmt(c.codebook_size)})`);
    Lab.setText("cb-vae-head", `Continuous VAE (f = ${c.vae_downsample_factor}, ${c.vae_latent_channels} channels)`);
    for (const [id, ceiling] of [["vq", c.tokenizer], ["vae", c.vae]]) {
      Lab.setText(`cb-${id}-psnr`, Lab.fmt(ceiling.psnr_db, 2));
      Lab.setText(`cb-${id}-pair-psnr`, Lab.fmt(ceiling.pair_psnr_db, 2));
      Lab.setText(`cb-${id}-judge`, percent(ceiling.judge_all));
      Lab.setText(`cb-${id}-pair-judge`, percent(ceiling.pair_judge_all));
    }
    Lab.setText("codebook-caption", `Reconstructions of ${c.scenes} held-out one-shape and ${c.scenes} two-shape ` +
      `scenes (seed ${c.seed}, which no training run draws from)`);
    Lab.setText("codebook-note", `The judged rows are the ceiling: a token model can at best draw what its ` +
      `tokenizer decodes, so its adherence cannot beat them. Tokenizer of model ${c.model_id}, VAE of model ` +
      `${c.vae_model_id}; ${Lab.fmt(c.measured_s, 2)} s.`);
    $("codebook-status").textContent = `The tokenizer's codes against the VAE, ${Timing.when(c)}.`;
  }

  async function loadCodebook(remeasure = false) {
    $("codebook-status").textContent = "Reconstructing held-out scenes through the tokenizer and the VAE…";
    try {
      showCodebook(await Lab.getJSON(`${API}/codebook`, remeasure ? { remeasure: true } : {}, "codebook"));
      $("codebook-remeasure").disabled = false;
    } catch (err) {
      if (!Lab.isAbort(err)) $("codebook-status").textContent = `Not measured: ${err.message}`;
    }
  }

  // ------------------------------------------------------------------ the cost against N

  function showCost(m) {
    const rounds = m.conditions.rounds;
    Plotly.react("cost-chart", m.curves.map((curve) => ({
      x: curve.points.map((p) => p.tokens), y: curve.points.map((p) => p.median_ms), type: "scatter",
      mode: "lines+markers", name: `${TITLES[curve.family]} (N^${Lab.fmt(curve.exponent, 2)})`,
      line: { color: COLOURS[curve.family] }, marker: { symbol: SYMBOLS[curve.family], size: 9 },
      error_y: Timing.errorBars(curve.points),
      hovertemplate: `${NAMES[curve.family]}, N = %{x}: %{y:.1f} ms<extra></extra>`,
    })), Lab.plotLayout({
      xaxis: { type: "log", tickvals: m.curves[0].points.map((p) => p.tokens), title: { text: "tokens N" },
        gridcolor: "#2a3440" },
      yaxis: { type: "log", title: { text: "ms per image (log scale)" }, gridcolor: "#2a3440" },
      showlegend: true, legend: { orientation: "h", y: -0.3 }, margin: { l: 56, r: 16, t: 24, b: 80 },
    }), Lab.plotConfig);
    const rows = $("cost-rows");
    rows.replaceChildren();
    m.curves[0].points.forEach((_, i) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = Lab.fmt(m.curves[0].points[i].tokens);
      tr.append(th);
      for (const curve of m.curves) {
        const p = curve.points[i];
        const td = document.createElement("td");
        td.textContent = `${Lab.fmt(p.forwards)} fwd · ${Timing.ms(p.median_ms)}${p.estimated ? " (est.)" : ""} ` +
          `(${Lab.fmt(p.low_ms, 1)}–${Lab.fmt(p.high_ms, 1)})`;
        tr.append(td);
      }
      rows.append(tr);
    });
    const others = m.curves.slice(1).map((c) => `${TITLES[c.family]}: ${Lab.fmt(c.points[0].forwards)} sequential ` +
      `forwards at every N, and still its time grew as N^${Lab.fmt(c.exponent, 2)}, since each forward works on ` +
      "all N tokens.");
    Lab.setText("cost-verdict", `Autoregressive, ${m.autoregressive.text}. ${others.join(" ")}`);
    const conditions = $("cost-conditions");
    conditions.textContent = Timing.conditions(m.conditions);
    conditions.classList.toggle("timing-noisy", m.conditions.noisy);
    const notes = $("cost-notes");
    notes.replaceChildren();
    const lines = m.curves.map((c) => `${TITLES[c.family]}: ${c.architecture.note} (width ${c.architecture.width}, ` +
      `depth ${c.architecture.depth}, ${c.architecture.heads} heads).`);
    const estimated = m.curves.flatMap((c) => c.points.filter((p) => p.estimated)
      .map((p) => `${TITLES[c.family]} at N = ${Lab.fmt(p.tokens)} is estimated: ${p.basis}.`));
    lines.push(...estimated,
      `One image, guidance scale ${m.guidance_scale} (two rows per forward); masked ${m.rounds} rounds, diffusion ` +
      `${m.steps} steps of ${m.sampler}; the sampling loops only (no caption encoding, no decoding). Medians of ` +
      `${rounds} interleaved rounds on ${m.device} with ${m.torch_threads} torch thread(s), ` +
      `${Lab.fmt(m.measured_s, 1)} s in all.`);
    for (const line of lines) {
      const li = document.createElement("li");
      li.textContent = line;
      notes.append(li);
    }
    $("cost-status").textContent = `Sampling time per image against N, ${Timing.when(m)}.`;
  }

  async function loadCost(remeasure = false) {
    $("cost-status").textContent = remeasure ? "Timing again: twelve samplers in interleaved rounds…"
      : "Timing the three samplers at four token counts (tens of seconds on a busy CPU, once per server)…";
    try {
      showCost(await Lab.getJSON(`${API}/cost`, { repeats: COST_ROUNDS, ...(remeasure ? { remeasure: true } : {}) },
        "cost"));
      $("cost-remeasure").disabled = false;
    } catch (err) {
      if (!Lab.isAbort(err)) $("cost-status").textContent = `Not timed: ${err.message}`;
    }
  }

  // ------------------------------------------------------------------ wiring

  async function start() {
    try {
      showFamilies(await Lab.getJSON(API, {}, "families"));
    } catch (err) {
      if (Lab.isAbort(err)) return;
      const note = $("families-status");
      note.textContent = `Could not ask which models are loaded: ${err.message}`;
      note.hidden = false;
      return;
    }
    const ar = families.autoregressive;
    const tokens = [families.autoregressive, families.masked].filter((f) => f.loaded);
    const model = families.diffusion;
    if (ar.loaded) await score();
    else {
      $("likelihood-status").textContent = `The autoregressive model is not loaded: ${ar.reason}.`;
      $("likelihood-score").disabled = true;
    }
    if (tokens.length && model.loaded) await loadCodebook();
    else $("codebook-status").textContent = `Not measured: ${tokens.length ? model.reason : ar.reason}.`;
    if (model.loaded) await loadCost();
    else $("cost-status").textContent = `Not timed: ${model.reason}.`;
  }

  $("families-draw").addEventListener("click", drawAll);
  $("families-cancel").addEventListener("click", cancel);
  $("likelihood-score").addEventListener("click", score);
  $("likelihood-form").addEventListener("submit", (e) => { e.preventDefault(); score(); });
  $("families-prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); drawAll(); }
  });
  window.addEventListener("pagehide", cancel);
  Timing.remeasureButton($("codebook-remeasure"), loadCodebook);
  Timing.remeasureButton($("cost-remeasure"), loadCost);
  start();
})();

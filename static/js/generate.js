// /generate: text to image over Server-Sent Events, with live previews, results and a step scrubber, for every
// family: diffusion's steps, or a token family's rows (autoregressive) or rounds (masked) filling a grid of codes.
"use strict";

const GeneratePage = (() => {
  const form = document.getElementById("generate-form");
  const $ = (id) => document.getElementById(id);
  const promptInput = $("prompt");
  const generateButton = $("generate");
  const cancelButton = $("cancel");
  const scrub = $("scrub");
  const familyField = $("family");
  const GUIDANCE_DEFAULTS = JSON.parse(familyField.dataset.guidanceDefaults);
  let shownFamily = familyField.value;

  let vocabulary = [];
  let source = null; // the streaming run ({cancel}), while one streams
  let run = null; // {id, total, steps: [], done, result}
  let lastCurl = "";

  const dataURL = (b64) => `data:image/png;base64,${b64}`;

  // Partials (guidance grid, guidance panels) follow the stream through these document events.
  function announce(type, detail) {
    document.dispatchEvent(new CustomEvent(`generate:${type}`, { detail }));
  }

  // ------------------------------------------------------------------ families

  // Elements marked data-families="..." belong to those families: the others' settings, readouts and previews hide.
  const belongs = (el, family) => el.dataset.families.split(" ").includes(family);

  function showFamily() {
    const family = familyField.value;
    for (const el of document.querySelectorAll("[data-families]")) el.hidden = !belongs(el, family);
    const scale = $("guidance_scale");
    if (Number(scale.value) === GUIDANCE_DEFAULTS[shownFamily] && family !== shownFamily) {
      scale.value = GUIDANCE_DEFAULTS[family]; // the family's own default, unless the reader moved it
    }
    shownFamily = family;
  }

  // The form's values that the chosen family takes: a knob of another family would be refused (knob_family).
  function forFamily(values) {
    const family = values.family || "diffusion";
    const own = { ...values };
    for (const el of form.querySelectorAll("[data-families]")) {
      if (!belongs(el, family)) for (const field of el.querySelectorAll("[name]")) delete own[field.name];
    }
    return own;
  }

  // The families GET /model says are not loaded can't be picked; top_k is bounded by the loaded codebook.
  function showFamilies(families) {
    const missing = [];
    for (const option of familyField.options) {
      const section = families[option.value];
      if (!section) continue; // diffusion: the image model itself
      option.disabled = !section.loaded;
      if (!section.loaded) {
        option.textContent += " (not loaded)";
        missing.push(section.load_error || `${option.value} not loaded`);
      } else if (section.codebook_size) {
        $("top_k").max = section.codebook_size;
      }
    }
    $("family-note").textContent = missing.join(" ");
  }

  // ------------------------------------------------------------------ model status and vocabulary

  async function loadModel() {
    try {
      const body = await Lab.getJSON("/api/v1/model");
      const live = body.live;
      vocabulary = live.vocabulary || [];
      $("steps").max = live.limits.max_steps;
      $("batch_size").max = live.limits.max_batch;
      showFamilies(body.families || {});
      if (!live.loaded) {
        const why = live.load_error ? `: ${live.load_error}` : " on this server";
        const status = $("model-status");
        status.textContent = `The model is not loaded${why}. Generation is unavailable until it is; ` +
          "the server's /readyz says when it is ready.";
        status.hidden = false;
        generateButton.disabled = true;
      }
    } catch (err) {
      if (!Lab.isAbort(err)) $("generate-error").textContent = `Could not read the model card: ${err.message}`;
    }
  }

  // The word being typed (after the last space) against the vocabulary; a click completes it.
  function suggest() {
    const box = $("prompt-suggestions");
    box.replaceChildren();
    const text = promptInput.value;
    const partial = (text.match(/([a-zA-Z]+)$/) || [null, ""])[1].toLowerCase();
    if (!partial || !vocabulary.length) return;
    const matches = vocabulary.filter((w) => w.startsWith(partial) && w !== partial).slice(0, 8);
    for (const word of matches) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = word;
      button.addEventListener("click", () => {
        promptInput.value = text.slice(0, text.length - partial.length) + word + " ";
        promptInput.dispatchEvent(new Event("input", { bubbles: true }));
        promptInput.focus();
      });
      box.appendChild(button);
    }
  }

  // ------------------------------------------------------------------ parameters and validation

  function query(values) {
    const params = forFamily(values);
    if (params.seed === "") delete params.seed;
    return params;
  }

  // The server's own check of the request, no sampling. A refusal is its 200 answer, so checking as the reader
  // types logs no failed request. Resolves to the check, or null when it failed or a newer one replaced it.
  async function check(values) {
    try {
      return await Lab.getJSON("/api/v1/generate/validate", query(values), "validate");
    } catch (err) {
      if (!Lab.isAbort(err)) $("generate-error").textContent = `Could not check the request: ${err.message}`;
      return null;
    }
  }

  // As the reader types: each message beside its field (the focus stays where it is), or the caption to be read.
  async function validate(values) {
    const answer = await check(values);
    if (!answer) return;
    $("generate-error").textContent = Lab.showFieldErrors(form, answer.errors).rest.join(" ");
    $("prompt-canonical").textContent = !answer.valid ? ""
      : answer.prompt_canonical ? `The model will read: “${answer.prompt_canonical}”.`
        : "Empty prompt: an unconditional sample (no caption).";
  }

  let controls = null; // bound once the model's limits are known, so a deep link's steps are not clamped early

  // ------------------------------------------------------------------ the run

  function setRunning(running) {
    generateButton.disabled = running;
    cancelButton.disabled = !running;
    form.setAttribute("aria-busy", String(running));
  }

  function finish(message) {
    source = null;
    if (run) run.done = true;
    setRunning(false);
    if (message) $("run-status").textContent = message;
    enableScrubber();
    announce("idle", { id: run && run.id });
  }

  // A token family's step (a row, or a round) in words: how much of the grid is drawn, at what cost.
  const tokensText = (step) => `${step.tokens_drawn} of ${step.grid.length}`;

  function showStep(step) {
    $("progress").max = step.total;
    $("progress").value = step.index + 1;
    Lab.setText("ro-step", Lab.stepLabel(step.index, step.total));
    Lab.setText("ro-left", Lab.fmt(step.remaining_s, 2));
    const where = step.grid
      ? `${Lab.stepLabel(step.index, step.total)} · ${tokensText(step)} tokens · ${step.forwards} forwards`
      : Lab.stepLabel(step.index, step.total, step.t);
    $("run-status").textContent =
      `${where} · ${Lab.fmt(step.elapsed_s, 2)} s elapsed · about ${Lab.fmt(step.remaining_s, 2)} s left`;
    if (step.grid) {
      Lab.setText("ro-tokens", tokensText(step));
      Lab.setText("ro-forwards", String(step.forwards));
      if (step.preview) $("live-grid").src = dataURL(step.preview);
      return;
    }
    Lab.setText("ro-t", String(step.t));
    Lab.setText("ro-abar", Lab.fmt(step.abar_t, 4));
    if (step.previews) {
      $("live-xt").src = dataURL(step.previews.x_t);
      $("live-x0").src = dataURL(step.previews.x0_hat);
    }
  }

  function slug(text) {
    const s = text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 48);
    return s || "unconditional";
  }

  function curlFor(parameters) {
    const url = new URL(`${Lab.base()}/api/v1/generate`, window.location.origin).href;
    const body = JSON.stringify(parameters).replace(/'/g, "'\\''");
    return `curl -X POST '${url}' -H 'Content-Type: application/json' -d '${body}'`;
  }

  function showResult(result) {
    const box = $("results");
    box.replaceChildren();
    for (const image of result.images) {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.className = "pixelated";
      img.src = dataURL(image.png_base64);
      img.width = 192;
      img.height = 192;
      img.alt = `Generated image, seed ${image.seed}`;
      const caption = document.createElement("figcaption");
      caption.append(`seed ${image.seed} · ${image.width}×${image.height} px · `);
      const link = document.createElement("a");
      link.href = img.src;
      link.download = `${slug(result.parameters.prompt)}-seed-${image.seed}.png`;
      link.textContent = "Download PNG";
      caption.append(link);
      figure.append(img, caption);
      box.append(figure);
    }
    const t = result.timings;
    $("result-timings").textContent =
      `Sampling ${Lab.fmt(t.sampling_s, 3)} s, decoding ${Lab.fmt(t.decode_s, 3)} s, ` +
      `${t.network_forwards} network calls, on ${result.device}; model ${result.model_id}. ` +
      `The PNG's "parameters" text chunk records the prompt and every setting.`;
    lastCurl = curlFor(result.parameters);
    $("curl-text").textContent = lastCurl;
    $("curl-text").hidden = false;
    $("copy-curl").disabled = false;
  }

  // The status line once a run is over, by how it ended (Lab.streamRun's onEnd).
  const ENDINGS = {
    result: () => `Done: ${run.result.images.length} image(s) in ${Lab.fmt(run.result.timings.total_s, 2)} s.`,
    error: () => "Stopped by the server.",
    ended: () => `The stream ended after ${run.steps.length} steps without a result.`,
    failed: () => (run.started
      ? `The connection was lost after ${run.steps.length} steps.` : "The stream did not start."),
    cancelled: () => `Cancelled after ${run.steps.length} of ${run.total} steps; the server stops at its next step.`,
  };

  function onStart(data) {
    run.id = data.id;
    run.started = true;
    run.total = data.total_steps;
    run.previews = data.previews;
    Lab.setText("ro-seed", String(data.parameters.seed));
    const grid = data.token_grid;
    $("latent-note").textContent = (grid
      ? `Token grid ${grid.side} × ${grid.side} = ${grid.tokens} tokens, each one of ${grid.codebook_size} codes ` +
        `(${grid.downsample_factor} × ${grid.downsample_factor} pixels each); ${grid.sequential_forwards} network ` +
        `forwards one after another. The preview shows ${grid.preview}.`
      : `Latent ${data.latent_shape.join(" × ")} (channels × height × width); x_t and ε̂ show ` +
        `${data.latent_preview}.`) + ` Previews follow image 0 (seed ${data.preview_seed}).`;
    $("run-status").textContent = `Started: ${data.total_steps} steps (${data.family}).`;
    announce("start", data);
  }

  function onStep(step) {
    run.steps.push(step);
    showStep(step);
    announce("step", step);
  }

  function onResult(result) {
    run.result = result;
    showResult(result);
    announce("result", result);
  }

  function onEnd(how, message, err) {
    finish(ENDINGS[how]());
    if (err && err.detail) Lab.showRefusal(form, err.detail, $("generate-error"));
    else if (message) $("generate-error").textContent = message;
  }

  async function start() {
    if (source) return;
    $("generate-error").textContent = "";
    if (!controls) return;
    const values = controls.read();
    const answer = await check(values);
    if (!answer) return;
    if (!answer.valid) {
      Lab.showRefusal(form, answer.errors, $("generate-error"));
      return;
    }
    run = { id: null, total: Number(values.steps) || 0, steps: [], done: false, started: false, result: null };
    resetScrubber();
    for (const id of ["live-xt", "live-x0", "live-grid"]) $(id).removeAttribute("src");
    $("progress").value = 0;
    $("run-status").textContent = "Waiting for a sampler…";
    setRunning(true);
    source = Lab.streamRun("/api/v1/generate/stream", query(values), {
      onStart, onStep, onResult, onError: (error) => announce("error", error), onEnd,
    });
  }

  function cancel() {
    if (source) source.cancel();
  }

  // ------------------------------------------------------------------ scrubber

  function resetScrubber() {
    scrub.disabled = true;
    scrub.max = 0;
    scrub.value = 0;
    Lab.setText("scrub-out", "–");
    for (const id of ["sc-t", "sc-abar", "sc-signal", "sc-noise", "sc-tokens", "sc-new", "sc-forwards"]) {
      Lab.setText(id, "–");
    }
    for (const id of ["sc-xt", "sc-x0", "sc-eps", "sc-grid"]) $(id).removeAttribute("src");
  }

  function enableScrubber() {
    if (!run || !run.steps.length) return;
    scrub.max = run.steps.length - 1;
    scrub.value = run.steps.length - 1;
    scrub.disabled = false;
    $("scrub-note").textContent = run.previews
      ? `${run.steps.length} stored steps: drag to revisit any of them.`
      : `${run.steps.length} stored steps (previews were off, so numbers only).`;
    showScrub();
  }

  function showScrub() {
    const step = run && run.steps[Number(scrub.value)];
    if (!step) return;
    Lab.setText("scrub-out", Lab.stepLabel(step.index, step.total, step.t));
    if (step.grid) {
      Lab.setText("sc-tokens", tokensText(step));
      Lab.setText("sc-new", String(step.tokens_new));
      Lab.setText("sc-forwards", String(step.forwards));
      if (step.preview) $("sc-grid").src = dataURL(step.preview);
      return;
    }
    Lab.setText("sc-t", String(step.t));
    Lab.setText("sc-abar", Lab.fmt(step.abar_t, 4));
    Lab.setText("sc-signal", Lab.fmt(step.sqrt_abar_t, 4));
    Lab.setText("sc-noise", Lab.fmt(step.sqrt_one_minus_abar_t, 4));
    if (step.previews) {
      $("sc-xt").src = dataURL(step.previews.x_t);
      $("sc-x0").src = dataURL(step.previews.x0_hat);
      $("sc-eps").src = dataURL(step.previews.eps_hat);
    }
  }

  // ------------------------------------------------------------------ wiring

  function randomSeed() {
    const batch = Math.max(1, Number($("batch_size").value) || 1);
    const draw = new Uint32Array(1);
    crypto.getRandomValues(draw);
    $("seed").value = draw[0] % (2 ** 31 - batch + 1);
    $("seed").dispatchEvent(new Event("input", { bubbles: true }));
  }

  async function copyCurl() {
    try {
      await navigator.clipboard.writeText(lastCurl);
      $("copy-curl").textContent = "Copied";
    } catch (_) { // no clipboard (plain http on another host): select the text instead
      const range = document.createRange();
      range.selectNodeContents($("curl-text"));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      $("copy-curl").textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { $("copy-curl").textContent = "Copy as curl"; }, 2000);
  }

  promptInput.addEventListener("input", suggest);
  familyField.addEventListener("change", showFamily); // before the form's own listener reads the values
  generateButton.addEventListener("click", start);
  cancelButton.addEventListener("click", cancel);
  scrub.addEventListener("input", showScrub);
  $("seed-random").addEventListener("click", randomSeed);
  $("copy-curl").addEventListener("click", copyCurl);
  promptInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); start(); }
  });
  window.addEventListener("pagehide", cancel);

  const keyInput = $("api-key");
  keyInput.value = Lab.apiKey();
  keyInput.addEventListener("change", () => {
    Lab.apiKey(keyInput.value.trim());
    if (controls) controls.fire(); // re-check the request with the new key
  });

  showFamily();
  loadModel().then(() => {
    controls = Lab.bindControls(form, (values) => validate(values), { delay: 250 });
    shownFamily = familyField.value; // a link's family comes with its own guidance scale
    showFamily();
    controls.fire();
  });

  // The form's values for the chosen family (its own knobs only), and the steps of the last run.
  return { read: () => (controls ? forFamily(controls.read()) : {}), steps: () => (run ? run.steps.slice() : []) };
})();

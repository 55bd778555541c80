// /generate: text to image over Server-Sent Events, with live previews, results and a step scrubber.
"use strict";

const GeneratePage = (() => {
  const form = document.getElementById("generate-form");
  const $ = (id) => document.getElementById(id);
  const promptInput = $("prompt");
  const generateButton = $("generate");
  const cancelButton = $("cancel");
  const scrub = $("scrub");

  let vocabulary = [];
  let source = null; // the streaming run ({cancel}), while one streams
  let run = null; // {id, total, steps: [], done, result}
  let lastCurl = "";

  const dataURL = (b64) => `data:image/png;base64,${b64}`;

  // Partials (guidance grid, guidance panels) follow the stream through these document events.
  function announce(type, detail) {
    document.dispatchEvent(new CustomEvent(`generate:${type}`, { detail }));
  }

  // ------------------------------------------------------------------ model status and vocabulary

  async function loadModel() {
    try {
      const body = await Lab.getJSON("/api/v1/model");
      const live = body.live;
      vocabulary = live.vocabulary || [];
      $("steps").max = live.limits.max_steps;
      $("batch_size").max = live.limits.max_batch;
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
    const params = { ...values };
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

  function showStep(step) {
    $("progress").max = step.total;
    $("progress").value = step.index + 1;
    Lab.setText("ro-step", Lab.stepLabel(step.index, step.total));
    Lab.setText("ro-t", String(step.t));
    Lab.setText("ro-abar", Lab.fmt(step.abar_t, 4));
    Lab.setText("ro-left", Lab.fmt(step.remaining_s, 2));
    $("run-status").textContent =
      `${Lab.stepLabel(step.index, step.total, step.t)} · ${Lab.fmt(step.elapsed_s, 2)} s elapsed · ` +
      `about ${Lab.fmt(step.remaining_s, 2)} s left`;
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
    $("latent-note").textContent =
      `Latent ${data.latent_shape.join(" × ")} (channels × height × width); x_t and ε̂ show ` +
      `${data.latent_preview}. Previews follow image 0 (seed ${data.preview_seed}).`;
    $("run-status").textContent = `Started: ${data.total_steps} steps.`;
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
    run = { id: null, total: Number(values.steps), steps: [], done: false, started: false, result: null };
    resetScrubber();
    $("live-xt").removeAttribute("src");
    $("live-x0").removeAttribute("src");
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
    for (const id of ["sc-t", "sc-abar", "sc-signal", "sc-noise"]) Lab.setText(id, "–");
    for (const id of ["sc-xt", "sc-x0", "sc-eps"]) $(id).removeAttribute("src");
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

  loadModel().then(() => {
    controls = Lab.bindControls(form, (values) => validate(values), { delay: 250 });
    controls.fire();
  });

  return { read: () => (controls ? controls.read() : {}), steps: () => (run ? run.steps.slice() : []) };
})();

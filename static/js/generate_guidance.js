// /generate, guidance made visible: EQ MM3.4's two estimates at one step, and three ways of combining them.
"use strict";

(() => {
  const ENDPOINT = "/api/v1/generate/guidance";
  const $ = (id) => document.getElementById(id);
  const panel = $("anatomy-panel");
  if (!panel) return;
  const runButton = $("anatomy-run");
  const status = $("anatomy-status");
  const errorBox = $("anatomy-error");
  const stepInput = $("anatomy-step");
  const LABELS = {
    eps_uncond: "ε(∅), unconditional", eps_cond: "ε(c), conditional",
    difference: "ε(c) − ε(∅), the prompt's pull", guided: "guided ε̃, what the sampler used",
  };

  function formValues() {
    if (window.GeneratePage && typeof GeneratePage.read === "function") {
      const values = GeneratePage.read();
      if (values && values.prompt !== undefined) return values;
    }
    const values = {};
    for (const name of ["prompt", "negative_prompt", "seed", "steps", "sampler", "guidance_scale"]) {
      const field = document.querySelector(`#generate-form [name="${name}"], [name="${name}"]`);
      if (field) values[name] = field.value;
    }
    return values;
  }

  // The step slider follows the form's step count.
  function syncSteps() {
    const steps = Math.max(1, Number(formValues().steps || 20));
    stepInput.max = String(steps - 1);
    if (Number(stepInput.value) > steps - 1) stepInput.value = String(steps - 1);
    showOutputs();
  }

  function showOutputs() {
    for (const id of ["anatomy-rescale", "anatomy-start", "anatomy-end", "anatomy-lambda"]) {
      $(`${id}-out`).textContent = $(id).value;
    }
    $("anatomy-step-out").textContent = Lab.stepLabel(Number(stepInput.value), Number(stepInput.max) + 1);
  }

  function request() {
    const v = formValues();
    return {
      prompt: v.prompt || "", negative_prompt: v.negative_prompt || "", seed: Number(v.seed || 0),
      steps: Number(v.steps || 20), sampler: v.sampler || "dpmpp_2m",
      guidance_scale: Number(v.guidance_scale !== undefined && v.guidance_scale !== "" ? v.guidance_scale : 5),
      at_step: Number(stepInput.value), variant: $("anatomy-variant").value,
      rescale: Number($("anatomy-rescale").value), cfgpp_lambda: Number($("anatomy-lambda").value),
      interval: { start: Number($("anatomy-start").value), end: Number($("anatomy-end").value) },
    };
  }

  function figure(b64, alt, caption, size = 160) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.className = "pixelated";
    img.src = `data:image/png;base64,${b64}`;
    img.width = size;
    img.height = size;
    img.alt = alt;
    const cap = document.createElement("figcaption");
    cap.append(...(Array.isArray(caption) ? caption : [caption]));
    fig.append(img, cap);
    return fig;
  }

  function line(text, className) {
    const span = document.createElement("span");
    span.textContent = text;
    if (className) span.className = className;
    return span;
  }

  function show(r) {
    const step = r.step;
    Lab.setText("an-t", `${step.t} (${Lab.stepLabel(step.index, step.total)})`);
    Lab.setText("an-abar", Lab.fmt(step.abar_t, 4));
    Lab.setText("an-guided", step.guided ? `yes, s = ${Lab.fmt(step.scale)}` : "no: ε̃ = ε(c)");
    const maps = Object.fromEntries(step.maps.map((m) => [m.name, m]));
    Lab.setText("an-diff", Lab.fmt(maps.difference.norm, 3));
    $("anatomy-maps").replaceChildren(...step.maps.map((m) => figure(
      m.png_base64, `${LABELS[m.name]} at t = ${step.t}, latent channels as tiles`,
      [line(LABELS[m.name]), document.createElement("br"),
        line(`‖·‖ = ${Lab.fmt(m.norm, 3)}, colour scale ±${Lab.fmt(m.display_scale, 3)}`, "mono")])));
    $("anatomy-x0").replaceChildren(...step.maps.filter((m) => m.x0_png_base64).map((m) => figure(
      m.x0_png_base64, `The clean image implied by ${LABELS[m.name]}`, `x̂0 from ${LABELS[m.name].split(",")[0]}`,
      128)));
    Lab.setText("anatomy-display", `How the maps are drawn: ${r.display}.`);
    $("anatomy-variants").replaceChildren(...r.variants.map((v) => {
      const seen = Lab.judgedText(v.judged, v.objects);
      const fig = figure(v.png_base64, `${v.label}, seed ${r.seed}: the judge sees ${seen}`, [
        line(v.label), document.createElement("br"), line(v.formula, "formula"), document.createElement("br"),
        line(`${v.sampler}, s = ${Lab.fmt(v.guidance_scale)}; guided on ${v.guided_steps} of ${r.steps} steps${v.interval_timesteps ?
          ` (t ${v.interval_timesteps[0]}–${v.interval_timesteps[1]})` : ""}; judge: ${seen}` +
          `${v.matches.all ? " ✓" : ""}`),
      ], 128);
      fig.dataset.variant = v.variant;
      return fig;
    }));
    $("anatomy-result").hidden = false;
  }

  async function run() {
    syncSteps(); // the form's steps may have been restored from a link without an input event
    errorBox.textContent = "";
    runButton.disabled = true;
    const body = request();
    status.textContent = `Sampling “${body.prompt}” five ways and taking ${Lab.stepLabel(body.at_step, body.steps)} ` +
      "apart…";
    try {
      const r = await Lab.postJSON(ENDPOINT, body);
      show(r);
      status.textContent = `Done in ${Lab.fmt(r.timings.total_s, 2)} s; ${r.convention}.`;
    } catch (err) {
      if (Lab.isAbort(err)) return;
      errorBox.textContent = err.message;
      status.textContent = "";
    } finally {
      runButton.disabled = false;
    }
  }

  $("anatomy-form").addEventListener("input", showOutputs);
  $("anatomy-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  runButton.addEventListener("click", run);
  const stepsField = document.querySelector('#generate-form [name="steps"]');
  if (stepsField) {
    stepsField.addEventListener("input", syncSteps);
    stepsField.addEventListener("change", syncSteps);
  }
  syncSteps();

  Lab.getJSON("/api/v1/model", {}, "anatomy-model").then((m) => {
    if (!m.live.loaded) {
      runButton.disabled = true;
      status.textContent = "The model is not loaded on this server, so there is no step to take apart.";
    }
  }).catch((err) => { if (!Lab.isAbort(err)) errorBox.textContent = err.message; });
})();

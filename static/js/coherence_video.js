// Frame coherence, measured on the real models: one prompt sampled by the image model frame by frame and by the
// space-time video model, streamed from GET /api/v1/generate/video/stream, and the attention cost of the video
// model's real token count from GET /api/v1/instruments/coherence/attention. Every number shown is the server's.
"use strict";

const CoherenceVideo = (() => {
  const STREAM = "/api/v1/generate/video/stream";
  const METHODS = ["per_frame", "video"];
  const LABEL = { per_frame: "Frame by frame", video: "Space-time model" };
  const COLOUR = { per_frame: "#ffb454", video: "#5ee6b0" };
  const $ = (id) => document.getElementById(id);
  const form = $("video-form");
  const generateButton = $("video-generate");
  const cancelButton = $("video-cancel");
  const errorBox = $("video-error");
  const runStatus = $("video-run-status");
  const promptInput = $("video-prompt-input");
  const stepsInput = $("video-steps");
  const framesInput = $("video-frames");

  let run = null; // the streaming run ({cancel}), while one streams
  let started = false; // whether the server has started it
  let last = null; // the last result, as the server sent it
  let attentionFrames = null; // frames of the attention figures on show
  let videoLoaded = false;

  const dataURL = (mime, b64) => `data:${mime};base64,${b64}`;

  // ------------------------------------------------------------------ form state

  // Deep links: the panel's fields live in the URL under a "v_" prefix, beside the toy's own. Nothing runs on a
  // change: a clip costs seconds of sampling, so only Generate starts one.
  const controls = Lab.bindControls(form, () => {}, { prefix: "v_" });

  // ------------------------------------------------------------------ the model

  async function loadModel() {
    try {
      const body = await Lab.getJSON("/api/v1/model", {}, "video-model");
      stepsInput.max = body.live.limits.max_steps;
      const video = body.video;
      const status = $("video-status");
      if (video && video.max_frames) framesInput.max = video.max_frames;
      controls.show();
      videoLoaded = Boolean(video && video.loaded && body.live.loaded);
      if (!videoLoaded) {
        const why = !body.live.loaded
          ? `the image model is not loaded${body.live.load_error ? `: ${body.live.load_error}` : ""}`
          : video ? video.load_error || "video model not loaded"
            : "video model not loaded: this server has no video weights";
        status.textContent = `Real clips are unavailable on this server (${why}). The toy above works without them.`;
        status.hidden = false;
        generateButton.disabled = true;
      }
    } catch (err) {
      if (!Lab.isAbort(err)) errorBox.textContent = `Could not read the model card: ${err.message}`;
    }
  }

  // ------------------------------------------------------------------ a run

  function setRunning(running) {
    generateButton.disabled = running || !videoLoaded;
    cancelButton.disabled = !running;
    form.setAttribute("aria-busy", String(running));
  }

  function resetProgress(steps, methods) {
    for (const method of METHODS) {
      const bar = $(`progress-${method}`);
      bar.max = Math.max(1, steps);
      bar.value = 0;
      Lab.setText(`progress-${method}-text`, methods.includes(method) ? `waiting for the first of ${steps} steps`
        : "not asked");
      $(`live-${method}`).hidden = true;
    }
  }

  function showStep(step) {
    const bar = $(`progress-${step.method}`);
    bar.max = step.total;
    bar.value = step.index + 1;
    Lab.setText(`progress-${step.method}-text`, Lab.stepLabel(step.index, step.total, step.t));
    const live = $(`live-${step.method}`);
    live.src = dataURL("image/png", step.preview);
    live.hidden = false;
    runStatus.textContent = `${LABEL[step.method]}: ${Lab.stepLabel(step.index, step.total, step.t)}; about ` +
      `${Lab.fmt(step.remaining_s, 1)} s of sampling left.`;
  }

  function clearClip(method) {
    const anim = $(`anim-${method}`);
    anim.hidden = true;
    anim.removeAttribute("src");
    anim.alt = "";
    Lab.setText(`anim-${method}-caption`, "No clip yet.");
    Lab.setText(`caption-${method}`, "");
    $(`strip-${method}`).replaceChildren();
    for (const cell of $(`metrics-${method}`).querySelectorAll("td[data-metric]")) {
      cell.textContent = "–";
      cell.removeAttribute("data-value");
    }
  }

  const tick = (ok) => (ok ? "✓" : "✗");

  function showClip(clip, result) {
    const method = clip.method;
    const m = clip.metrics;
    const anim = $(`anim-${method}`);
    anim.src = dataURL(clip.animation.mime, clip.animation.base64);
    anim.alt = `${LABEL[method]}: the ${m.frames}-frame clip for “${result.prompt}”, seed ${result.seed}, looping`;
    anim.hidden = false;
    Lab.setText(`anim-${method}-caption`,
      `${m.frames} frames, ${clip.animation.frame_ms} ms each (${clip.animation.mime}); ` +
      `sampled in ${Lab.fmt(clip.timings.sampling_s, 2)} s.`);
    Lab.setText(`caption-${method}`, `Conditioned on “${clip.caption}”.`);

    const strip = $(`strip-${method}`);
    strip.replaceChildren();
    clip.frames.forEach((b64, k) => {
      const img = document.createElement("img");
      img.className = "pixelated";
      img.src = dataURL("image/png", b64);
      img.alt = `${LABEL[method]}, frame ${k + 1} of ${clip.frames.length}`;
      img.setAttribute("role", "listitem");
      strip.append(img);
    });

    const cells = {};
    for (const cell of $(`metrics-${method}`).querySelectorAll("td[data-metric]")) cells[cell.dataset.metric] = cell;
    const number = (name, digits) => {
      const value = m[name];
      cells[name].textContent = Lab.fmt(value, digits);
      if (value === null || value === undefined) cells[name].removeAttribute("data-value");
      else cells[name].dataset.value = String(value);
    };
    number("temporal_flickering", 3);
    number("subject_consistency", 3);
    number("motion_smoothness", 3);
    number("path_rms_px", 2);
    number("mean_jump_px", 2);
    number("mean_jump_frame_widths", 3);
    cells.tracked.textContent = `${m.tracked_frames} / ${m.frames}`;
    const asked = result.parsed.direction;
    const judged = m.direction === null ? "not tracked" : m.direction;
    cells.direction.textContent = asked
      ? `${judged} (${asked}) ${tick(m.adherence.direction)}`
      : `${judged} (none asked)`;
    const named = Object.keys(m.adherence).filter((k) => k !== "all");
    cells.adherence.textContent = named.length
      ? `${named.map((k) => `${k} ${tick(m.adherence[k])}`).join(" · ")}; all: ${m.adherence.all ? "yes" : "no"}`
      : "nothing named";
  }

  // The tracked centres of both clips in image pixels (y downward), frames as markers, gaps where untracked.
  function drawPaths(result, width) {
    const clips = [result.baseline, result.video].filter(Boolean);
    const traces = clips.map((clip) => {
      const c = clip.metrics.centroids;
      return {
        x: c.map((p) => (p ? p[0] : null)), y: c.map((p) => (p ? p[1] : null)),
        type: "scatter", mode: "lines+markers+text", name: LABEL[clip.method],
        text: c.map((_, k) => String(k + 1)), textposition: "top center",
        textfont: { color: COLOUR[clip.method], size: 10 },
        hovertext: c.map((p, k) => (p ? `frame ${k + 1}: (${Lab.fmt(p[0], 2)}, ${Lab.fmt(p[1], 2)}) px` : "")),
        hoverinfo: "text",
        line: { color: COLOUR[clip.method], width: 1.5 },
        marker: { color: COLOUR[clip.method], size: 8 },
        connectgaps: false,
      };
    });
    // Image coordinates: the whole frame, y growing downward (without a decoded width, Plotly picks the range);
    // square pixels, the plot area shrinking to fit rather than the axes widening.
    const x = width ? { range: [0, width] } : { autorange: true };
    const y = width ? { range: [width, 0] } : { autorange: "reversed" };
    const tracked = clips.some((clip) => clip.metrics.centroids.some((p) => p !== null));
    Plotly.react("video-paths", traces, Lab.plotLayout({
      xaxis: { title: { text: "x (px)" }, ...x, gridcolor: "#2a3440", zeroline: false, constrain: "domain" },
      yaxis: { title: { text: "y (px, downward)" }, ...y, gridcolor: "#2a3440", zeroline: false, scaleanchor: "x",
        constrain: "domain" },
      annotations: tracked ? [] : [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
        text: "The judge found no shape in any frame of either clip", font: { color: "#9aa7b4" } }],
      legend: { orientation: "h", y: -0.22 },
      margin: { l: 56, r: 16, t: 16, b: 72 },
      height: 420,
    }), Lab.plotConfig);
  }

  async function showResult(result) {
    last = result;
    for (const method of METHODS) clearClip(method);
    for (const clip of [result.baseline, result.video]) if (clip) showClip(clip, result);
    // The frame's width in pixels is the decoded image's own.
    const anim = $("anim-video");
    try { await anim.decode(); } catch (_) { /* a broken image shows as such; the chart still gets a range */ }
    drawPaths(result, anim.naturalWidth || null);
    const t = result.timings;
    runStatus.textContent = `Done: seed ${result.seed}, ${result.parameters.steps} steps per method, ` +
      `${Lab.fmt(t.total_s, 2)} s in all (${Lab.fmt(t.queue_s * 1000, 1)} ms queued, ` +
      `${Lab.fmt(t.metrics_s * 1000, 1)} ms measuring); video model ${result.model_id}.`;
    if (attentionFrames !== result.parameters.frames) loadAttention(result.parameters.frames);
  }

  function query(values) {
    const params = { ...values, compare: "true", include_frames: "true", format: "apng" };
    if (params.seed === "") delete params.seed;
    return params;
  }

  // The status line once a run is over, by how it ended (Lab.streamRun's onEnd); a result writes its own.
  const ENDINGS = {
    error: () => "Stopped by the server.",
    ended: () => "The stream ended without a result.",
    failed: () => (started ? "The connection was lost." : "The run did not start."),
    cancelled: () => "Cancelled; the server stops at its next step.",
  };

  function onStart(data) {
    started = true;
    resetProgress(data.parameters.steps, data.methods);
    runStatus.textContent = `Started: ${data.frames} frames, ${data.parameters.steps} steps for each of ` +
      `${data.methods.map((m) => LABEL[m].toLowerCase()).join(" and ")}; “${data.prompt}”, seed ` +
      `${data.parameters.seed}.`;
  }

  function onEnd(how, message, err) {
    run = null;
    setRunning(false);
    if (err && err.detail) Lab.showRefusal(form, err.detail, errorBox);
    else if (message) errorBox.textContent = message;
    if (ENDINGS[how]) runStatus.textContent = ENDINGS[how]();
  }

  function start() {
    if (run) return;
    errorBox.textContent = "";
    const values = controls.read();
    controls.sync();
    started = false;
    setRunning(true);
    resetProgress(Number(values.steps), ["per_frame", "video"]);
    runStatus.textContent = "Waiting for a sampler…";
    run = Lab.streamRun(STREAM, query(values), { onStart, onStep: showStep, onResult: showResult, onEnd });
  }

  function cancel() {
    if (run) run.cancel();
  }

  // ------------------------------------------------------------------ attention cost of the real token count

  async function loadAttention(frames) {
    attentionFrames = frames; // coherence_attention.js shows them
    if (!(await CoherenceAttention.load(frames))) attentionFrames = null;
  }

  // ------------------------------------------------------------------ wiring

  // An error is about the request that was sent: once the reader edits it, the error no longer applies.
  form.addEventListener("input", () => {
    errorBox.textContent = "";
    Lab.showFieldErrors(form, []);
  });
  form.addEventListener("submit", start);
  generateButton.addEventListener("click", start);
  cancelButton.addEventListener("click", cancel);
  promptInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); start(); }
  });
  window.addEventListener("pagehide", cancel);
  loadModel().then(() => {
    controls.show();
    if (videoLoaded) loadAttention(Number(framesInput.value));
  });

  return { last: () => last };
})();

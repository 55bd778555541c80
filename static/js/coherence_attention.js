// Frame coherence, "what attending across frames costs on this model": the served video model's tokens, joint
// against factorised attention pairs and FLOPs, and a forward of each timed in interleaved rounds, from
// GET /api/v1/instruments/coherence/attention; the spread, the load, the recorded benchmarks, a Re-measure button.
// coherence_video.js asks for the frames of the clip on show.
"use strict";

const CoherenceAttention = (() => {
  const ATTENTION = "/api/v1/instruments/coherence/attention";
  const ROUNDS = 5;
  const $ = (id) => document.getElementById(id);
  const status = $("attention-status");
  const button = $("attention-remeasure");
  let frames = null; // of the figures on show

  function show(a) {
    const rounds = a.conditions.rounds;
    Lab.setText("at-tokens-clip", Lab.fmt(a.tokens));
    Lab.setText("at-tokens-frame", Lab.fmt(a.tokens_per_frame));
    Lab.setText("at-frames", Lab.fmt(a.frames));
    Lab.setText("at-joint-pairs", Lab.fmt(a.joint_pairs));
    Lab.setText("at-fact-pairs", Lab.fmt(a.factorised_pairs));
    Lab.setText("at-joint-gflop", Lab.fmt(a.joint_flops / 1e9, 3));
    Lab.setText("at-fact-gflop", Lab.fmt(a.factorised_flops / 1e9, 3));
    Lab.setText("at-joint-ms", Lab.fmt(a.joint_ms, 2));
    Lab.setText("at-fact-ms", Lab.fmt(a.factorised_ms, 2));
    Lab.setText("at-joint-spread", Timing.spread(a.joint, rounds));
    Lab.setText("at-fact-spread", Timing.spread(a.factorised, rounds));
    Lab.setText("at-joint-recorded", Timing.recorded(a.joint_recorded, a.joint_recorded_note));
    Lab.setText("at-fact-recorded", Timing.recorded(a.factorised_recorded, a.factorised_recorded_note));
    Lab.setText("at-pair-ratio", Lab.fmt(a.pair_ratio, 2));
    Lab.setText("at-flop-ratio", Lab.fmt(a.flop_ratio, 2));
    Timing.showRatio("at-ms-ratio", "at-ms-ratio-unit", a.ordering, a.time_ratio, 2, "× the time");
    const conditions = $("attention-conditions");
    conditions.textContent = Timing.conditions(a.conditions);
    conditions.classList.toggle("timing-noisy", a.conditions.noisy);
    const lighter = a.ordering.faster;
    Lab.setText("attention-verdict", `By the arithmetic the ${lighter} network is the lighter one at ` +
      `${a.frames} frames: ${Lab.fmt(a.flop_ratio, 2)}× the FLOPs for joint, although it scores ` +
      `${Lab.fmt(a.pair_ratio, 2)}× the pairs (the factorised model adds a temporal block, with its projections, ` +
      `MLP and caption attention, beside every spatial one). ${Timing.verdict(a.ordering)}`);
    status.textContent = `The served video model at ${a.frames} frames: ${a.latent_size} × ${a.latent_size} ` +
      `latent cells in patches of ${a.patch}, ${a.tokens_per_frame} tokens per frame; ${Timing.when(a)}.`;
    Lab.setText("attention-note", `Medians of ${rounds} interleaved rounds (batch ${a.batch}: the two rows of ` +
      `guidance) on ${a.device} with ${a.torch_threads} torch thread(s); the joint network reuses the image ` +
      `weights and is timed for its cost only; ${Lab.fmt(a.measured_s, 2)} s in all. Wall times on a shared CPU ` +
      "move with its load; the pair and FLOP counts do not.");
  }

  // Times the attention at this frame count (or shows the server's cached figures); false when it failed.
  async function load(clipFrames, remeasure = false) {
    frames = clipFrames;
    status.textContent = remeasure
      ? `Measuring again at ${frames} frames: both networks in interleaved rounds…`
      : `Timing the video model's forward at ${frames} frames, joint and factorised…`;
    try {
      show(await Lab.getJSON(ATTENTION, { frames, repeats: ROUNDS, ...(remeasure ? { remeasure: true } : {}) },
        "attention"));
      button.disabled = false;
      return true;
    } catch (err) {
      if (Lab.isAbort(err)) return true; // a newer request took over
      status.textContent = `Could not time the attention: ${err.message}`;
      button.disabled = frames === null;
      return false;
    }
  }

  Timing.remeasureButton(button, () => load(frames, true));
  return { load };
})();

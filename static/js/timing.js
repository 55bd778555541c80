// Live timings in words, alike on every page that shows one (app/lab/timing.py measures them): a median with the
// middle half of its rounds, the load it ran under, whether an ordering is resolved, when it was measured, the
// recorded benchmark beside it, and the Re-measure button.
"use strict";

const Timing = (() => {
  const figure = (x) => Lab.fmt(x, x < 10 ? 2 : 1); // milliseconds, two decimals below 10
  const ms = (x) => `${figure(x)} ms`;

  // "middle half 11.9–12.8 ms over 5 rounds".
  function spread(s, rounds) {
    return `middle half ${figure(s.low_ms)}–${ms(s.high_ms)} over ${rounds} rounds`;
  }

  const load = (c) => `load average ${Lab.fmt(c.load_start, 2)} at the start and ${Lab.fmt(c.load_end, 2)} at ` +
    `the end on ${c.cores} core${c.cores === 1 ? "" : "s"} (${c.cpu})`;

  // One sentence on how far to trust the figures.
  function conditions(c) {
    const how = `${c.rounds} interleaved rounds (each times every candidate once, the order rotated), ` +
      "after a warm-up each";
    if (c.noisy) {
      return `Noisy: ${c.noisy_reasons.join("; ")}. Measured in ${how}; ${load(c)}. Press Re-measure when the ` +
        "machine is quieter.";
    }
    return `Every middle half within ${Lab.fmt(100 * c.noisy_spread)}% of its median, in ${how}; ${load(c)}.`;
  }

  // A comparison's ratio into valueId, its unit into unitId; "not resolved" instead when the spreads overlap.
  function showRatio(valueId, unitId, cmp, value, digits, unit) {
    Lab.setText(valueId, cmp.resolved ? Lab.fmt(value, digits) : "not resolved");
    Lab.setText(unitId, cmp.resolved ? unit : " (the spreads overlap)");
  }

  function verdict(cmp) {
    const slower = cmp.slower[0].toUpperCase() + cmp.slower.slice(1);
    if (!cmp.resolved) {
      return `${slower} against ${cmp.faster}: the spreads overlap, so this measurement cannot say which is ` +
        "faster; no ratio is claimed.";
    }
    return cmp.inverted
      ? `${slower} measured faster than ${cmp.faster} beyond the spread, against what the arithmetic expects.`
      : `${slower} measured slower than ${cmp.faster} beyond the spread, as the arithmetic expects.`;
  }

  function when(m) {
    const at = m.measured_at.replace("T", " ").replace("+00:00", " UTC");
    return m.cached ? `measured earlier by this server, at ${at}` : `measured just now (${at})`;
  }

  // "recorded: 11.2 ms (bench/scaling.py, 2026-11-26, Intel Xeon, 2 cores, torch 2.13.0, 2 threads, load 1.6)".
  function recorded(figure, note) {
    if (!figure) return `recorded benchmark: none for this figure (${note})`;
    const date = figure.recorded_at ? figure.recorded_at.slice(0, 10) : "date not recorded";
    const loadText = figure.load_average === null ? "" : `, load ${Lab.fmt(figure.load_average, 1)}`;
    return `recorded benchmark: ${ms(figure.median_ms)} (${figure.file}, ${date}; ${figure.machine}${loadText})`;
  }

  // A button that measures again: disabled while it runs, its label says so; measure(true) does the work.
  function remeasureButton(button, measure) {
    const label = button.textContent;
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      button.textContent = "Measuring…";
      try {
        await measure(true);
      } finally {
        button.disabled = false;
        button.removeAttribute("aria-busy");
        button.textContent = label;
      }
    });
  }

  // Plotly error bars from each timing's quartiles.
  const errorBars = (rows) => ({
    type: "data", symmetric: false, visible: true, color: "#e6edf3", thickness: 1.5, width: 6,
    array: rows.map((r) => r.high_ms - r.median_ms), arrayminus: rows.map((r) => r.median_ms - r.low_ms),
  });

  return { ms, spread, conditions, showRatio, verdict, when, recorded, remeasureButton, errorBars };
})();

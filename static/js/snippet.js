// Runnable snippets: the chapter's code in an editor, run in the reader's browser by Python in a Web Worker
// (static/js/snippet_worker.js). Nothing loads until the reader opens the editor; no code is sent to the server.
// The page ties each run to its instrument: Snippet.mount(section, {compare}) calls compare(values) after a run
// that ended, with the snippet's globals the section names in data-report, and shows what it answers.
"use strict";

const Snippet = (() => {
  const URL_KEY = "code"; // the edited code lives in the page's URL, so a link reproduces it
  const LOAD_TIMEOUT_S = 120; // Python (about 9 MB) must have started by then
  const OUTPUT_KEEP = 250_000; // characters the output box keeps (the runtime caps a run's output below this)

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = Object.assign(document.createElement("script"), { src });
      script.onload = resolve;
      script.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.append(script);
    });
  }

  // Numbers the browser printed against the server's: [{what, yours, server}] -> the pairs that differ, in words.
  // Both sides run the same numpy operations in the same order, so agreement is to rounding (1e-9 relative).
  const close = (a, b) => (typeof a === "number" && typeof b === "number"
    ? Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b)) : a === b);
  const same = (a, b) => (Array.isArray(a) || Array.isArray(b)
    ? Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i])) : close(a, b));
  const shown = (v) => (Array.isArray(v) ? `[${v.map(shown).join(", ")}]`
    : typeof v === "number" ? Lab.fmt(v, 4) : v === null || v === undefined ? "nothing" : String(v));

  function differences(pairs) {
    return pairs.filter((p) => !same(p.yours, p.server)).map((p) => `${p.what}: yours ${shown(p.yours)}, ` +
      `the server's ${shown(p.server)}`);
  }

  // The run's values that a comparison reads, or an error naming those the edited code no longer defines.
  function need(values, names) {
    const missing = names.filter((name) => values[name] === null || values[name] === undefined);
    if (missing.length) throw new Error(`the code no longer defines ${missing.join(", ")}, which the comparison reads`);
    return values;
  }

  function mount(section, { compare }) {
    const $ = (id) => section.querySelector(`#${section.id}-${id}`);
    const original = $("original").textContent;
    const cfg = section.dataset;
    const report = JSON.parse(cfg.report);
    const status = $("status");
    const output = $("output");
    const figures = $("figures");
    const verdict = $("verdict");
    const runButton = $("run");
    const stopButton = $("stop");
    let editor = null; // SnippetEditor, once opened
    let opening = null; // the promise of the editor being opened (once)
    let worker = null;
    let pythonReady = false;
    let current = null; // the run in progress: {id, started, timer}
    let runs = 0;
    let afterRun = null; // what to say once the next run ends (a suggested break)
    let outputLength = 0;
    let readyHint = "Press Run or Ctrl+Enter.";

    const say = (text) => { status.textContent = text; };

    // ---------------------------------------------------------------- the URL

    function keepInURL(code) {
      const params = new URLSearchParams(window.location.search);
      if (code === original) params.delete(URL_KEY); else params.set(URL_KEY, code);
      const query = params.toString();
      history.replaceState(null, "", `${window.location.pathname}${query ? `?${query}` : ""}`);
    }

    // ---------------------------------------------------------------- Python in a worker

    function startPython() {
      pythonReady = false;
      worker = new Worker(cfg.workerUrl);
      worker.onmessage = ({ data }) => onMessage(data);
      worker.onerror = (event) => failed(event.message || "the worker stopped");
      worker.postMessage({ type: "init", pyodideURL: cfg.pyodideUrl, runtimeURL: cfg.runtimeUrl,
        packages: JSON.parse(cfg.packages) });
      const me = worker;
      setTimeout(() => { if (worker === me && !pythonReady) failed(`Python did not start within ${LOAD_TIMEOUT_S} s`); },
        LOAD_TIMEOUT_S * 1000);
      say(`Loading Python (Pyodide and numpy, about 9 MB from this server, cached after the first time)… ${readyHint}`);
    }

    function failed(message) {
      if (worker) worker.terminate();
      worker = null;
      if (current) finish(false);
      say(`Python could not start here: ${message}. Reload the page to try again.`);
      runButton.disabled = true;
    }

    function onMessage(data) {
      if (data.type === "ready") {
        pythonReady = true;
        section.dataset.loadSeconds = data.seconds.toFixed(2);
        if (!current) say(`Python is ready (started in ${data.seconds.toFixed(1)} s). ${readyHint}`);
        return;
      }
      if (data.type === "failed") { failed(data.message); return; }
      if (!current || data.id !== current.id) return; // a stopped run's last words
      if (data.type === "started") {
        current.started = performance.now();
        say("Running…");
        current.timer = setTimeout(() => stop(`the ${cfg.timeLimitS} s time limit`), Number(cfg.timeLimitS) * 1000);
      } else if (data.type === "output") {
        for (const [stream, text] of data.chunks) write(text, stream);
      } else if (data.type === "plot") {
        drawPlot(data);
      } else if (data.type === "image") {
        drawImage(data);
      } else if (data.type === "done") {
        const seconds = data.seconds;
        finish(data.ok);
        say(data.ok ? `Ran in ${seconds < 0.01 ? "under 0.01" : seconds.toFixed(2)} s, in your browser.`
          : "The run stopped at an error: the traceback is in the output.");
        if (data.crash) write(`\n${data.crash}\n`, "stderr");
        settle(data);
      }
    }

    // ---------------------------------------------------------------- output, charts, images

    function write(text, stream = "stdout") {
      const span = document.createElement("span");
      if (stream === "stderr") span.className = "stderr";
      span.textContent = text;
      output.append(span);
      outputLength += text.length;
      while (outputLength > OUTPUT_KEEP && output.firstChild) {
        outputLength -= output.firstChild.textContent.length;
        output.firstChild.remove();
      }
      output.scrollTop = output.scrollHeight;
    }

    function figure(caption) {
      const box = document.createElement("figure");
      box.className = "snippet-figure";
      if (caption) box.append(Object.assign(document.createElement("figcaption"), { textContent: caption }));
      figures.append(box);
      return box;
    }

    function drawPlot({ xs, ys, title }) {
      const box = figure(title);
      const chart = document.createElement("div");
      chart.className = "chart";
      chart.setAttribute("role", "img");
      const finite = ys.filter((y) => y !== null);
      chart.setAttribute("aria-label", `plot_xy: ${xs.length} points` + (finite.length
        ? `, y from ${Lab.fmt(Math.min(...finite))} to ${Lab.fmt(Math.max(...finite))}` : ""));
      box.prepend(chart);
      Plotly.newPlot(chart, [{ x: xs, y: ys, type: "scatter", mode: "lines+markers", line: { color: "#5ee6b0" },
        name: "plot_xy" }], Lab.plotLayout({ height: 320, showlegend: false }), Lab.plotConfig);
    }

    function drawImage({ width, height, rgba, title }) {
      const box = figure(title);
      const canvas = Object.assign(document.createElement("canvas"), { width, height, className: "pixelated" });
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `show_image: ${width} × ${height} pixels`);
      const bytes = Uint8ClampedArray.from(atob(rgba), (c) => c.charCodeAt(0));
      canvas.getContext("2d").putImageData(new ImageData(bytes, width, height), 0, 0);
      canvas.style.width = `${Math.max(width, Math.min(256, 16 * width))}px`; // small arrays drawn large, unblurred
      box.prepend(canvas);
    }

    // ---------------------------------------------------------------- run, stop, reset

    function run() {
      if (current || !editor) return;
      if (!worker) startPython();
      runs += 1;
      current = { id: runs, started: null, timer: null };
      $("break-note").hidden = true; // a suggested edit's note comes back when its run ends
      output.replaceChildren();
      outputLength = 0;
      output.hidden = false;
      figures.replaceChildren();
      verdict.hidden = true;
      runButton.disabled = true;
      stopButton.disabled = false;
      if (!pythonReady) say("Waiting for Python to load, then running…");
      const code = editor.getCode();
      keepInURL(code); // at once: a link copied after a run reproduces the code that ran, not a debounced older one
      worker.postMessage({ type: "run", id: current.id, code, filename: cfg.filename, report });
    }

    function finish(ok) {
      if (current) clearTimeout(current.timer);
      current = null;
      runButton.disabled = false;
      stopButton.disabled = true;
      section.dataset.lastRun = ok ? "ok" : "error";
    }

    // Stop ends the worker, and with it whatever Python was doing; a fresh one starts for the next run.
    function stop(why = "you") {
      if (!current) return;
      const seconds = current.started ? (performance.now() - current.started) / 1000 : 0;
      worker.terminate();
      worker = null;
      write(`\n[stopped by ${why} after ${seconds.toFixed(1)} s]\n`, "stderr");
      finish(false);
      section.dataset.lastRun = "stopped";
      afterRun = null;
      startPython();
      say(`Stopped by ${why} after ${seconds.toFixed(1)} s; Python is restarting for the next run.`);
    }

    // ---------------------------------------------------------------- the instrument's verdict

    async function settle(done) {
      const note = afterRun;
      afterRun = null;
      if (note) showBreakNote(note);
      if (!done.ok) return;
      verdict.hidden = false;
      verdict.className = "snippet-verdict";
      verdict.textContent = "Asking the server for its result with the same parameters…";
      let answer;
      try {
        answer = await compare(done.values);
      } catch (err) {
        answer = { verdict: "unchecked", text: `The server cannot check this run: ${err.message}.` };
      }
      verdict.className = `snippet-verdict ${answer.verdict}`;
      verdict.textContent = answer.text;
      section.dataset.verdict = answer.verdict;
    }

    // ---------------------------------------------------------------- the editor

    // Opens the editor once, however many ask (the button, a link's code, a suggested break).
    function open(code = original) {
      opening = opening || openEditor(code);
      return opening;
    }

    async function openEditor(code) {
      $("open").disabled = true;
      say("Loading the editor…");
      try {
        await loadScript(cfg.editorUrl);
      } catch (err) {
        $("open").disabled = false;
        opening = null;
        say(`The editor could not load: ${err.message}.`);
        return;
      }
      const host = $("editor");
      host.hidden = false;
      $("original").hidden = true;
      editor = SnippetEditor.create(host, {
        doc: code, label: `${section.querySelector("h2").textContent}: Python code, editable`, onRun: run,
        onChange: Lab.debounce(keepInURL, 250),
      });
      $("open").hidden = true;
      for (const id of ["run", "stop", "reset"]) $(id).hidden = false;
      if (!worker) startPython();
    }

    function reset() {
      if (!editor) return;
      readyHint = "Press Run or Ctrl+Enter.";
      editor.setCode(original);
      keepInURL(original);
    }

    // A suggested break: our code with one edit, run at once, and the failure it shows named when it has run.
    async function applyBreak(button) {
      await open();
      if (!editor || current) return;
      editor.setCode(original.replace(button.dataset.find, button.dataset.replace));
      afterRun = { label: button.textContent.trim(), failure: button.dataset.failure, explain: button.dataset.explain };
      run();
    }

    function showBreakNote({ label, failure, explain }) {
      const note = $("break-note");
      note.replaceChildren(`Edited: ${label}. What broke: `, Object.assign(document.createElement("strong"),
        { textContent: failure }), `. ${explain}`);
      note.hidden = false;
    }

    if (!cfg.pyodideUrl) {
      $("open").disabled = true;
      for (const b of section.querySelectorAll("button[data-find]")) b.disabled = true;
      return;
    }
    $("open").addEventListener("click", () => open());
    runButton.addEventListener("click", run);
    stopButton.addEventListener("click", () => stop());
    $("reset").addEventListener("click", reset);
    for (const b of section.querySelectorAll("button[data-find]")) b.addEventListener("click", () => applyBreak(b));
    const linked = new URLSearchParams(window.location.search).get(URL_KEY);
    if (linked !== null && linked !== original) {
      readyHint = "This link carries edited code, not ours: press Run to run it, or Reset for ours.";
      open(linked);
    }
  }

  return { mount, need, differences };
})();

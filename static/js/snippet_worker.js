// Runs the reader's Python: Pyodide (CPython in WebAssembly) with numpy, in a Web Worker, so a long or endless run
// never blocks the page and Stop can end it (the page terminates this worker). Everything comes from this server.
// The server sends this one script with 'wasm-unsafe-eval' in its Content-Security-Policy, which Pyodide needs to
// compile WebAssembly; a worker is governed by its own script's policy, so the pages themselves keep the strict one.
//
// In:  {type: "init", pyodideURL, runtimeURL, packages}; then {type: "run", id, code, filename, report}.
// Out: {type: "ready", seconds} once Python is up, or {type: "failed", message};
//      per run: {type: "started", id}, then what static/py/snippet_runtime.py posts (output, plot, image, done),
//      each with the run's id.
"use strict";

let runtime = null; // a promise of the snippet_runtime module

function init({ pyodideURL, runtimeURL, packages }) {
  runtime = (async () => {
    const started = performance.now();
    importScripts(`${pyodideURL}pyodide.js`);
    const pyodide = await loadPyodide({ indexURL: pyodideURL });
    await pyodide.loadPackage(packages, { messageCallback: () => {} });
    const response = await fetch(runtimeURL);
    if (!response.ok) throw new Error(`${runtimeURL} answered ${response.status}`);
    pyodide.FS.writeFile("snippet_runtime.py", await response.text()); // in the working directory, on sys.path
    const module = pyodide.pyimport("snippet_runtime");
    postMessage({ type: "ready", seconds: (performance.now() - started) / 1000 });
    return { pyodide, module };
  })();
  runtime.catch((err) => postMessage({ type: "failed", message: String(err && err.message ? err.message : err) }));
}

async function run({ id, code, filename, report }) {
  const { pyodide, module } = await runtime;
  postMessage({ type: "started", id });
  const post = (type, json) => postMessage({ ...JSON.parse(json), type, id });
  try {
    module.run(code, filename, pyodide.toPy(report), post);
  } catch (err) { // only the runtime itself failing lands here: the reader's errors are part of the output
    postMessage({ type: "done", id, ok: false, seconds: 0, values: {}, crash: String(err) });
  }
}

self.onmessage = ({ data }) => (data.type === "init" ? init(data) : run(data));

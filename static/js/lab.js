// Diffusion Lab: small helpers shared by every page (no framework, no network but this server).
"use strict";

const Lab = (() => {
  function debounce(fn, ms = 120) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  // Turn FastAPI's 422 detail into one readable line: "scale: Input should be less than or equal to 20".
  function describeError(status, body) {
    if (body && Array.isArray(body.detail)) {
      return body.detail
        .map((d) => `${(d.loc || []).filter((p) => p !== "query" && p !== "body").join(".")}: ${d.msg}`)
        .join("; ");
    }
    if (body && typeof body.detail === "string") return body.detail;
    return `HTTP ${status}`;
  }

  // The app may sit under a path prefix behind a reverse proxy; the server tells the page which.
  const base = () => document.body.dataset.base || "";

  // The operator may protect generation with DIFFUSION_LAB_API_KEY; the key a reader typed lives in this tab only.
  const KEY_STORE = "diffusion-lab-api-key";
  const apiKey = (value) => {
    if (value !== undefined) {
      if (value) sessionStorage.setItem(KEY_STORE, value); else sessionStorage.removeItem(KEY_STORE);
    }
    return sessionStorage.getItem(KEY_STORE) || "";
  };
  const authHeaders = (extra = {}) => (apiKey() ? { ...extra, "X-API-Key": apiKey() } : extra);

  // Requests that a newer one supersedes are aborted, so a slow answer never overwrites a fresh one.
  const inflight = new Map();

  async function getJSON(path, params = {}, key = path) {
    if (inflight.has(key)) inflight.get(key).abort();
    const controller = new AbortController();
    inflight.set(key, controller);
    const url = new URL(base() + path, window.location.origin);
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
    }
    try {
      const response = await fetch(url, { signal: controller.signal, headers: authHeaders({ Accept: "application/json" }) });
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      if (!response.ok) throw new Error(describeError(response.status, body));
      return body;
    } finally {
      if (inflight.get(key) === controller) inflight.delete(key);
    }
  }

  // POST a JSON body; errors as getJSON's (err.status holds the HTTP status). A newer call with the same key
  // aborts the older one.
  async function postJSON(path, body, key = `POST ${path}`) {
    if (inflight.has(key)) inflight.get(key).abort();
    const controller = new AbortController();
    inflight.set(key, controller);
    try {
      const response = await fetch(base() + path, {
        method: "POST", signal: controller.signal, body: JSON.stringify(body),
        headers: authHeaders({ Accept: "application/json", "Content-Type": "application/json" }),
      });
      let data = null;
      try { data = await response.json(); } catch (_) { data = null; }
      if (!response.ok) throw Object.assign(new Error(describeError(response.status, data)), { status: response.status });
      return data;
    } finally {
      if (inflight.get(key) === controller) inflight.delete(key);
    }
  }

  // Server-Sent Events over fetch (unlike EventSource it can send the API key, reads a refusal's JSON body
  // and never reconnects on its own, which would start a second job). onEvent(name, data) per event.
  // Resolves when the stream ends; rejects with the server's detail on a non-2xx answer. Abort via signal.
  async function streamEvents(path, params, { signal, onEvent }) {
    const url = new URL(base() + path, window.location.origin);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const response = await fetch(url, { signal, headers: authHeaders({ Accept: "text/event-stream" }) });
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      throw Object.assign(new Error(describeError(response.status, body)), { status: response.status });
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
    }
  }

  function isAbort(err) {
    return err && err.name === "AbortError";
  }

  // The run an event belongs to: every stream's events carry its id.
  const runOf = (data) => data.id;

  // A stream that failed, in one line: the server's refusal ("422: prompt: …", 429, 503) or the lost connection.
  function failure(err) {
    return err.status ? `${err.status}: ${err.message}` : `The connection failed: ${err.message}`;
  }

  // One sampler run streamed from `path`: a start event, steps, then a result or an error. Only this run's events
  // reach the callbacks: the start event names the run, and another run's events are dropped. The run is over at
  // its result or error, when the stream ends or fails, or on cancel(); the stream is then closed (a cancelled job
  // stops at the server's next step) and onEnd(how, message) runs once, so the page can re-enable its controls.
  // how: "result", "error", "ended" (no result came), "failed" or "cancelled"; message: the error line to show.
  function streamRun(path, params, { onStart, onStep, onResult, onError = () => {}, onEnd }) {
    const controller = new AbortController();
    let open = true;
    let id = null;
    function end(how, message = "") {
      if (!open) return;
      open = false;
      controller.abort();
      onEnd(how, message);
    }
    const handlers = {
      start(data) { id = runOf(data); onStart(data); },
      step: onStep,
      result(data) { onResult(data); end("result"); },
      error(data) { onError(data); end("error", `${data.status}: ${data.detail}`); },
    };
    function onEvent(name, data) {
      if (!open || !handlers[name]) return;
      if (name !== "start" && runOf(data) !== id) return;
      handlers[name](data);
    }
    streamEvents(path, params, { signal: controller.signal, onEvent })
      .then(() => end("ended"), (err) => end("failed", failure(err)));
    return { cancel: () => end("cancelled") };
  }

  // Controls are inputs/selects with a name inside `form`. Their values live in the URL's query string,
  // so a copied link reproduces the view; a second form on the page keeps its names apart there with a `prefix`.
  // Returns {read, write, fire, show, sync}: show re-labels the outputs after the page changed a field's limits.
  function bindControls(form, onChange, { delay = 120, prefix = "" } = {}) {
    const fields = Array.from(form.querySelectorAll("input[name], select[name]"));
    const query = new URLSearchParams(window.location.search);
    for (const field of fields) {
      const key = prefix + field.name;
      if (query.has(key)) {
        if (field.type === "checkbox") field.checked = query.get(key) === "true";
        else field.value = query.get(key);
      }
    }
    function read() {
      const values = {};
      for (const field of fields) {
        values[field.name] = field.type === "checkbox" ? String(field.checked) : field.value;
      }
      return values;
    }
    function showOutputs() {
      for (const field of fields) {
        const out = form.querySelector(`output[for="${field.id}"]`);
        if (out) out.textContent = field.value + (out.dataset.unit ? ` ${out.dataset.unit}` : "");
      }
    }
    function syncURL(values) {
      // Update only this form's keys: another panel on the page may keep its own state in the URL.
      const params = new URLSearchParams(window.location.search);
      for (const [name, value] of Object.entries(values)) params.set(prefix + name, value);
      history.replaceState(null, "", `${window.location.pathname}?${params}`);
    }
    const fire = debounce(() => onChange(read()), delay);
    form.addEventListener("input", () => { showOutputs(); syncURL(read()); fire(); });
    form.addEventListener("change", () => { showOutputs(); syncURL(read()); fire(); });
    form.addEventListener("submit", (e) => e.preventDefault());
    function write(values) {
      for (const field of fields) {
        if (field.name in values) {
          if (field.type === "checkbox") field.checked = Boolean(values[field.name]);
          else field.value = values[field.name];
        }
      }
      showOutputs();
      syncURL(read());
      onChange(read());
    }
    showOutputs();
    return { read, write, fire: () => onChange(read()), show: showOutputs, sync: () => syncURL(read()) };
  }

  // One place for the numbers' formatting, so every page reads alike.
  function fmt(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    if (typeof x !== "number") return String(x);
    const abs = Math.abs(x);
    if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return x.toExponential(2);
    if (Number.isInteger(x)) return x.toLocaleString("en-US");
    return x.toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  const plotLayout = (extra = {}) => Object.assign({
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#171e26",
    font: { color: "#e6edf3", family: "system-ui, sans-serif", size: 12 },
    margin: { l: 56, r: 16, t: 32, b: 48 },
    xaxis: { gridcolor: "#2a3440", zerolinecolor: "#3a4654" },
    yaxis: { gridcolor: "#2a3440", zerolinecolor: "#3a4654" },
    legend: { orientation: "h", y: -0.2 },
  }, extra);

  // No mode bar: its buttons would be focusable controls inside a role="img" chart, whose content screen readers
  // skip (axe: nested-interactive). Drag to zoom and double-click to reset still work with a mouse.
  const plotConfig = { responsive: true, displaylogo: false, displayModeBar: false };

  // Check-yourself widgets: <form class="quiz" data-answer="0.6" data-tolerance="0.01"> or data-kind="bool".
  // The expected answer is put into data-answer by the server, computed with the instrument's own functions.
  function bindQuizzes(root = document) {
    for (const quiz of root.querySelectorAll("form.quiz")) {
      const input = quiz.querySelector("input, select");
      const verdict = quiz.querySelector(".verdict");
      quiz.addEventListener("submit", (event) => {
        event.preventDefault();
        const raw = String(input.value).trim().toLowerCase();
        let right;
        if (quiz.dataset.kind === "bool") {
          right = ["true", "t", "yes"].includes(raw) === (quiz.dataset.answer === "true") && ["true", "t", "yes", "false", "f", "no"].includes(raw);
        } else {
          const value = Number(raw);
          right = raw !== "" && Number.isFinite(value) && Math.abs(value - Number(quiz.dataset.answer)) <= Number(quiz.dataset.tolerance || 1e-6);
        }
        verdict.textContent = right ? `Right. ${quiz.dataset.explain || ""}` : "Not quite — try again (the instrument above can help).";
        verdict.className = `verdict ${right ? "right" : "wrong"}`;
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => bindQuizzes());

  return { base, apiKey, debounce, getJSON, postJSON, streamEvents, streamRun, isAbort, bindControls, fmt, setText, plotLayout, plotConfig, bindQuizzes, describeError };
})();

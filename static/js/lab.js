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

  // One item of a 422's detail: the field it names ("query" and "body" are where, not what) and its message in words
  // (pydantic's "Value error, " prefix is how the error was raised, not what is wrong).
  const fieldOf = (d) => (d.loc || []).filter((p) => p !== "query" && p !== "body").join(".");
  const messageOf = (d) => String(d.msg).replace(/^Value error, /, "");

  // Turn FastAPI's 422 detail into one readable line: "scale: Input should be less than or equal to 20"; a message
  // that already starts with its field's name ("beta_end must be larger than ...") is not prefixed twice.
  const named = (d) => (!fieldOf(d) || messageOf(d).startsWith(fieldOf(d)) ? messageOf(d) : `${fieldOf(d)}: ${messageOf(d)}`);

  function describeError(status, body) {
    if (body && Array.isArray(body.detail)) return body.detail.map(named).join("; ");
    if (body && typeof body.detail === "string") return body.detail;
    return `The server answered with status ${status} and no explanation.`;
  }

  // A refusal as an Error: the message in words, err.status the HTTP status, err.detail a 422's items (else absent).
  function refused(status, body) {
    const detail = body && Array.isArray(body.detail) ? body.detail : undefined;
    return Object.assign(new Error(describeError(status, body)), { status, detail });
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
    // An empty value is sent as such (an empty prompt means "unconditional"), exactly as the streams send it; a list
    // is the parameter repeated, once per item (eps_uncond=0.2&eps_uncond=-0.1).
    for (const [k, v] of Object.entries(params)) {
      if (Array.isArray(v)) for (const item of v) url.searchParams.append(k, item);
      else if (v !== undefined && v !== null) url.searchParams.set(k, v);
    }
    try {
      const response = await fetch(url, { signal: controller.signal, headers: authHeaders({ Accept: "application/json" }) });
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      if (!response.ok) throw refused(response.status, body);
      return body;
    } finally {
      if (inflight.get(key) === controller) inflight.delete(key);
    }
  }

  // POST a JSON body; errors as getJSON's (err.status, err.detail). A newer call with the same key
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
      if (!response.ok) throw refused(response.status, data);
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
      throw refused(response.status, body);
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

  // A stream that failed, in one line of words: the server's refusal ("prompt: unknown word: star …", a full queue,
  // no model) or the lost connection. The status is the program's business; the reader gets the reason.
  function failure(err) {
    return err.status ? err.message : `The connection failed: ${err.message}`;
  }

  // One sampler run streamed from `path`: a start event, steps, then a result or an error. Only this run's events
  // reach the callbacks: the start event names the run, and another run's events are dropped. The run is over at
  // its result or error, when the stream ends or fails, or on cancel(); the stream is then closed (a cancelled job
  // stops at the server's next step) and onEnd(how, message, err) runs once, so the page can re-enable its controls.
  // how: "result", "error", "ended" (no result came), "failed" or "cancelled"; message: the error line to show;
  // err: the refusal when it "failed" (err.detail holds a 422's items, to put beside their fields).
  function streamRun(path, params, { onStart, onStep, onResult, onError = () => {}, onEnd }) {
    const controller = new AbortController();
    let open = true;
    let id = null;
    function end(how, message = "", err = undefined) {
      if (!open) return;
      open = false;
      controller.abort();
      onEnd(how, message, err);
    }
    const handlers = {
      start(data) { id = runOf(data); onStart(data); },
      step: onStep,
      result(data) { onResult(data); end("result"); },
      error(data) { onError(data); end("error", data.detail); },
    };
    function onEvent(name, data) {
      if (!open || !handlers[name]) return;
      if (name !== "start" && runOf(data) !== id) return;
      handlers[name](data);
    }
    streamEvents(path, params, { signal: controller.signal, onEvent })
      .then(() => end("ended"), (err) => end("failed", failure(err), err));
    return { cancel: () => end("cancelled") };
  }

  const FIELDS = "input[name], select[name], textarea[name]";

  // Why a link's value cannot go into a field, in words; "" when it can. Checked before the browser would quietly
  // blank a select or clamp a slider.
  function linkProblem(field, given) {
    if (field.type === "checkbox") return ["true", "false"].includes(given) ? "" : "is neither true nor false";
    if (field.tagName === "SELECT") {
      const options = Array.from(field.options, (o) => o.value);
      return options.includes(given) ? "" : `is not one of ${options.join(", ")}`;
    }
    if (field.type !== "range" && field.type !== "number") return "";
    if (given.trim() === "") return field.type === "number" ? "" : "is empty";
    const x = Number(given);
    if (!Number.isFinite(x)) return "is not a number";
    if (field.min !== "" && x < Number(field.min)) return `is below the least value, ${field.min}`;
    if (field.max !== "" && x > Number(field.max)) return `is above the greatest value, ${field.max}`;
    return "";
  }

  // The link's values the fields cannot take are not dropped in silence: the note at the top of the form says what
  // was set aside and what is used instead.
  function showLinkNote(form, notes) {
    const id = `${form.id}-link-note`;
    let note = document.getElementById(id);
    if (!notes.length) { if (note) note.remove(); return; }
    if (!note) {
      note = document.createElement("p");
      note.id = id;
      note.className = "notice link-note";
      note.setAttribute("role", "status");
      form.prepend(note);
    }
    note.textContent = `From the link: ${notes.join("; ")}.`;
  }

  // Controls are inputs/selects/textareas with a name inside `form`. Their values live in the URL's query string,
  // so a copied link reproduces the view; a second form on the page keeps its names apart there with a `prefix`.
  // A value a field cannot take keeps the field's own and is named in a note (showLinkNote).
  // Returns {read, write, fire, show, sync}: show re-labels the outputs after the page changed a field's limits.
  function bindControls(form, onChange, { delay = 120, prefix = "" } = {}) {
    const fields = Array.from(form.querySelectorAll(FIELDS));
    const query = new URLSearchParams(window.location.search);
    const notes = [];
    for (const field of fields) {
      const key = prefix + field.name;
      if (!query.has(key)) continue;
      const given = query.get(key);
      const problem = linkProblem(field, given);
      const own = field.type === "checkbox" ? String(field.checked) : field.value;
      if (problem) notes.push(`${key}=${given} ${problem}, so it is ${own || "empty"}`);
      else if (field.type === "checkbox") field.checked = given === "true";
      else {
        field.value = given;
        if (field.type === "range" && Number(field.value) !== Number(given)) {
          notes.push(`${key}=${given} falls between the slider's steps of ${field.step}, so it is ${field.value}`);
        }
      }
    }
    showLinkNote(form, notes);
    if (notes.length) syncURL(read()); // the link in the address bar becomes one that reproduces what is shown
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

  // What the judge read in one image, in words: one shape, or each of a two-shape prompt's shapes.
  function judgedText(judged, objects) {
    const one = (j) => (j.shape ? `${j.size || "?"} ${j.colour || "?"} ${j.shape}` : "an unreadable shape");
    if (objects) {
      if (!objects.length) return "no shape";
      return `${objects.length === 1 ? "one shape: " : ""}${objects.map(one).join(" and ")}` +
        (judged.clean ? "" : " (not two clean shapes)");
    }
    return judged.shape ? `${one(judged)} at ${judged.position || "?"}` : "no clean shape";
  }

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  // One way to say where a sampler is, on every page: "step k of N" counts the steps done (k = index + 1 of the
  // 0-based index the streams send), with the timestep t of that step's input beside it when known.
  const stepLabel = (index, total, t) => `step ${index + 1} of ${total}${t === undefined ? "" : ` · t = ${t}`}`;

  // An instrument's figures answer the settings that computed them. When the server refuses newer settings, the
  // figures stay for comparison but are dimmed and say they are out of date, and errorBox gives the reason;
  // message "" (an answer arrived) makes them current again.
  function markStale(views, errorBox, message = "") {
    errorBox.textContent = message;
    for (const view of views) {
      view.classList.toggle("stale", Boolean(message));
      let note = view.querySelector(":scope > .stale-note");
      if (!message) { if (note) note.remove(); continue; }
      if (!note) {
        note = document.createElement("p");
        note.className = "stale-note";
        note.setAttribute("role", "status");
        view.prepend(note);
      }
      note.textContent = "Out of date: these figures are for the last settings the server accepted; " +
        "the current ones were refused (see the reason by the controls).";
    }
  }

  // The box beside a field for its own messages: #<id>-error if the page has one, else made just below the field
  // (below the row or label that holds it) and named in the field's aria-describedby.
  function errorBoxFor(field) {
    const id = `${field.id}-error`;
    let box = document.getElementById(id);
    if (box) return box;
    box = document.createElement("p");
    box.id = id;
    box.className = "error field-error";
    (field.closest(".inline, label") || field).after(box);
    const described = (field.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    field.setAttribute("aria-describedby", [...described, id].join(" "));
    return box;
  }

  // A 422's items beside the fields they name (aria-invalid and the message the field is described by); the
  // previous messages are cleared. Returns the invalid fields in the form's order, and the lines for items that
  // name no field of the form.
  function showFieldErrors(form, details = []) {
    const fields = Array.from(form.querySelectorAll(FIELDS));
    const byName = new Map();
    const rest = [];
    for (const d of details) {
      const name = fieldOf(d);
      if (fields.some((f) => f.name === name)) byName.set(name, [...(byName.get(name) || []), messageOf(d)]);
      else rest.push(named(d));
    }
    const invalid = [];
    for (const field of fields) {
      const messages = byName.get(field.name);
      if (messages) {
        errorBoxFor(field).textContent = messages.join(" ");
        field.setAttribute("aria-invalid", "true");
        invalid.push(field);
      } else {
        field.removeAttribute("aria-invalid");
        const box = document.getElementById(`${field.id}-error`);
        if (box) box.textContent = "";
      }
    }
    return { invalid, rest };
  }

  // A refused request shown where it can be fixed: each message by its field (showFieldErrors), the first such field
  // in view and focused, and errorBox naming those fields, then what names none. Returns the invalid fields.
  function showRefusal(form, details, errorBox) {
    const { invalid, rest } = showFieldErrors(form, details);
    const label = (field) => {
      const own = form.querySelector(`label[for="${field.id}"]`);
      return (own ? (own.querySelector("span") || own).textContent : field.name).trim();
    };
    const lines = invalid.length
      ? [`Not started: fix ${invalid.length === 1 ? "this field" : "these fields"} first: ` +
        `${invalid.map(label).join(", ")}.`] : [];
    errorBox.textContent = [...lines, ...rest].join(" ");
    if (invalid.length) {
      invalid[0].scrollIntoView({ block: "center" });
      invalid[0].focus();
    }
    return invalid;
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

  // A second y axis on the right: its own round ticks (Plotly would otherwise put them level with the left axis's,
  // at values such as 0.445), and its title pushed clear of them (automargin grows the right margin to fit both).
  const rightAxis = (title) => ({
    title: { text: title, standoff: 12 }, overlaying: "y", side: "right", rangemode: "tozero", showgrid: false,
    tickmode: "auto", nticks: 6, automargin: true,
  });

  // A number as a reader writes it, in the page's own formats too: "2,048" (thousands), "0,6" (a decimal comma),
  // "1.234,5", "2 048", "12x" or "12×" (a factor), "−0.5"; spaces around are fine. NaN for anything else.
  function parseNumber(text) {
    let s = String(text).trim().replace(/\u2212/g, "-").replace(/\s*[x×]$/i, "");
    if (/^[+-]?\d{1,3}([\s\u00a0\u202f]\d{3})+([.,]\d+)?$/.test(s)) s = s.replace(/[\s\u00a0\u202f]/g, "");
    const thousands = /^[+-]?\d{1,3}(,\d{3})+$/.test(s);
    const decimal = s.lastIndexOf(",") > s.lastIndexOf(".") && !thousands ? "," : ".";
    const group = decimal === "," ? "." : ",";
    const [whole, fraction, ...more] = s.split(decimal);
    if (more.length) return NaN;
    if (whole.includes(group) && !new RegExp(`^[+-]?\\d{1,3}(\\${group}\\d{3})+$`).test(whole)) return NaN;
    s = whole.split(group).join("") + (fraction === undefined ? "" : `.${fraction}`);
    return /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) : NaN;
  }

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
          const value = parseNumber(raw);
          right = Number.isFinite(value) && Math.abs(value - Number(quiz.dataset.answer)) <= Number(quiz.dataset.tolerance || 1e-6);
        }
        verdict.textContent = right ? `Right. ${quiz.dataset.explain || ""}` : "Not quite — try again (the instrument above can help).";
        verdict.className = `verdict ${right ? "right" : "wrong"}`;
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => bindQuizzes());

  return {
    base, apiKey, debounce, getJSON, postJSON, streamEvents, streamRun, isAbort, bindControls, fmt, judgedText, setText,
    plotLayout,
    plotConfig, bindQuizzes, describeError, stepLabel, markStale, showFieldErrors, showRefusal, rightAxis, parseNumber,
  };
})();

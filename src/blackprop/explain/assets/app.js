// blackprop explain: renders data computed by the library (bp.explain) and asks the server to recompute.
// No number shown here is computed in JavaScript: values, losses and gradients all come from Python.
"use strict";
const BOOT = JSON.parse(document.getElementById("blackprop-data").textContent);
const SERVER = BOOT.mode === "server";
const state = { data: BOOT.current, method: "ised", program: BOOT.program || "blog", semiring: "add-mult", draw: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}
function fmt(x) { return x === null || x === undefined ? "" : Number(x).toFixed(4); }
function num(tag, value, attrs) { return el(tag, Object.assign({ "data-value": String(value) }, attrs || {}), fmt(value)); }
function show(value) { return typeof value === "string" ? value : JSON.stringify(value); }

function inputName(v) { return state.data.program.inputs[v].name; }
function classValue(v, c) { return show(state.data.program.inputs[v].values[c]); }
function outputValue(j) { return j < 0 ? "failed" : show(state.data.program.outputs[j]); }
function factorKey(v, c) { return v + ":" + c; }
function probOf(v, c) { return state.data.probs[v][c]; }

function highlight(keys, on) {
  for (const key of keys) {
    document.querySelectorAll('[data-factor="' + key + '"]').forEach((n) => n.classList.toggle("hl", on));
  }
}
function hoverable(node, factors) {
  const keys = factors.map(([v, c]) => factorKey(v, c));
  node.setAttribute("data-factors", keys.join(","));
  node.addEventListener("mouseenter", () => { node.classList.add("hl"); highlight(keys, true); });
  node.addEventListener("mouseleave", () => { node.classList.remove("hl"); highlight(keys, false); });
  return node;
}

function renderExample() {
  const data = state.data;
  $("seed").textContent = String(data.seed) + (SERVER ? "" : " (draw " + (state.draw + 1) + " of " + BOOT.draws["add-mult"].length + ")");
  $("k").value = data.settings.num_samples;
  $("semiring").value = state.semiring;
  $("source").textContent = data.program.source;
  const target = $("target");
  target.replaceChildren(...data.program.outputs.map((y, j) => el("option", { value: String(j) }, show(y))));
  target.value = String(data.target_index);
  const table = el("table", { id: "probs-table" });
  const width = Math.max(...data.probs.map((p) => p.length));
  const head = el("tr", {}, el("th", { class: "name" }, "input"));
  for (let c = 0; c < width; c++) head.append(el("th", {}, "class " + c));
  table.append(head);
  data.probs.forEach((row, v) => {
    const tr = el("tr", {}, el("td", { class: "name" }, "M(" + inputName(v) + ")"));
    row.forEach((p, c) => {
      const input = el("input", { type: "number", min: "0", max: "1", step: "0.01", value: String(p),
        "data-var": String(v), "data-class": String(c), title: inputName(v) + " = " + classValue(v, c) });
      if (!SERVER) input.setAttribute("readonly", "readonly");
      input.addEventListener("change", () => recompute({ edited: [v, c, Number(input.value)] }));
      tr.append(el("td", { class: "prob-cell", "data-factor": factorKey(v, c) }, el("div", { class: "note" }, classValue(v, c)), input));
    });
    table.append(tr);
  });
  $("probs").replaceChildren(table);
  renderTabs();
  renderMethod();
}

function renderTabs() {
  const tabs = $("method-tabs");
  tabs.replaceChildren(...state.data.order.map((key) => el("button", {
    "data-method": key, class: key === state.method ? "active" : "",
    onclick: () => { state.method = key; renderTabs(); renderMethod(); },
  }, state.data.methods[key].label)));
}

function factorText(factors, kind, semiring) {
  const names = factors.map(([v, c]) => el("span", { class: "factor", "data-factor": factorKey(v, c) },
    "p_" + inputName(v) + "(" + classValue(v, c) + ")=" + fmt(probOf(v, c))));
  const joined = [];
  names.forEach((n, i) => { if (i) joined.push(semiring === "min-max" ? ", " : " \u00b7 "); joined.push(n); });
  return semiring === "min-max" ? ["min(", ...joined, ")"] : joined;
}

function renderTerms(method) {
  const box = el("div", { class: "terms" });
  if (!method.terms.length) return box;
  const kind = method.kind;
  if (kind === "reinforce" || kind === "nasr") {
    box.append(el("div", { class: "note" }, "gradient terms: coefficient \u00d7 \u2207 log of the sample's probabilities"));
    for (const term of method.terms) {
      box.append(el("div", { class: "row" }, hoverable(el("span", { class: "term", "data-sample": String(term.sample) },
        "sample " + (term.sample + 1) + ": ", num("span", term.value, { class: "term-value" }), " \u00d7 \u2207log(",
        ...factorText(term.factors, kind, "add-mult"), ")"), term.factors)));
    }
    return box;
  }
  if (kind === "indecater") {
    box.append(el("div", { class: "note" }, "p_hat = sum of p_d(c) \u00b7 f\u0304(d, c) / D; f\u0304 is the share of the N samples with x_d set to c that give y"));
    for (const term of method.terms) {
      box.append(el("div", { class: "row" }, hoverable(el("span", { class: "term" },
        ...factorText(term.factors, kind, "add-mult"), " \u00b7 f\u0304=" + fmt(term.f_bar) + " / D = ",
        num("span", term.value, { class: "term-value" })), term.factors)));
    }
    return box;
  }
  const semiring = method.semiring || "add-mult";
  const byOutput = new Map();
  for (const term of method.terms) {
    if (!byOutput.has(term.output)) byOutput.set(term.output, []);
    byOutput.get(term.output).push(term);
  }
  for (const [j, terms] of [...byOutput.entries()].sort((a, b) => a[0] - b[0])) {
    const row = el("div", { class: "row", "data-output": String(j) }, "y=" + outputValue(j) + ": ");
    terms.forEach((term, i) => {
      if (i) row.append(semiring === "add-mult" ? " + " : " , ");
      row.append(hoverable(el("span", { class: "term" }, ...factorText(term.factors, kind, semiring), " = ",
        num("span", term.value, { class: "term-value" })), term.factors));
    });
    if (method.aggregate) {
      row.append(semiring === "add-mult" ? "  \u2192 w = " : "  \u2192 w = max = ", num("span", method.aggregate[j], { class: "aggregate", "data-output": String(j) }));
    }
    box.append(row);
  }
  if (method.truncated) box.append(el("div", { class: "note" }, "the most probable terms only"));
  return box;
}

function renderSamples(method) {
  if (!method.samples.length) return el("div");
  const extra = ["reward", "baseline", "standardised", "block"].filter((k) => k in method.samples[0]);
  const table = el("table", { class: "samples" }, el("tr", {}, el("th", {}, "#"), el("th", { class: "name" }, "sample"),
    el("th", {}, "program output"), ...extra.map((k) => el("th", {}, k))));
  method.samples.forEach((s, i) => {
    const factors = s.tuple.map((c, v) => [v, c]).filter(([, c]) => c >= 0);
    const cells = factors.map(([v, c]) => el("span", { class: "factor", "data-factor": factorKey(v, c) }, inputName(v) + "=" + classValue(v, c) + " "));
    table.append(hoverable(el("tr", { class: "sample", "data-tuple": s.tuple.join(","), "data-output": String(s.output) },
      el("td", {}, String(i + 1)), el("td", { class: "name" }, ...cells), el("td", { class: "sample-output" }, outputValue(s.output)),
      ...extra.map((k) => k === "block" ? el("td", {}, String(s[k] + 1)) : num("td", s[k]))), factors));
  });
  return table;
}

function renderBars(method) {
  const box = el("div", { class: "bars", id: "output-vector" });
  method.output.forEach((value, j) => {
    box.append(el("div", { class: "bar-row" + (j === state.data.target_index ? " target" : "") },
      el("span", { class: "bar-label" }, "y=" + outputValue(j)),
      el("span", { class: "bar", style: "width:" + Math.max(0, Math.min(1, value)) * 300 + "px" }),
      num("span", value, { class: "value output-value", "data-output": String(j) })));
  });
  return box;
}

function renderGradient(method) {
  const table = el("table", { id: "gradient" }, el("tr", {}, el("th", { class: "name" }, "probability"), el("th", {}, "value"),
    el("th", {}, "gradient of the loss"), el("th", {}, "exact gradient"), el("th", {}, "difference")));
  method.gradient.forEach((row, v) => row.forEach((g, c) => {
    const d = method.difference[v][c];
    const at = { "data-var": String(v), "data-class": String(c) };
    table.append(hoverable(el("tr", {}, el("td", { class: "name factor", "data-factor": factorKey(v, c) }, "p_" + inputName(v) + "(" + classValue(v, c) + ")"),
      num("td", probOf(v, c)), num("td", g, Object.assign({ class: "grad" }, at)),
      num("td", state.data.exact_gradient[v][c], Object.assign({ class: "exact-grad" }, at)),
      num("td", d, Object.assign({ class: "diff" + (Math.abs(d) > 0.05 ? " large" : "") }, at))), [[v, c]]));
  }));
  return table;
}

function renderHistory(method) {
  if (!method.history) return el("div");
  const table = el("table", { class: "history" }, el("tr", {}, el("th", {}, "step"), el("th", {}, "q(target)"), el("th", {}, "L1 distance to exact p")));
  for (const h of method.history) table.append(el("tr", {}, el("td", {}, String(h.step)), num("td", h.q_target), num("td", h.l1_to_exact)));
  return el("div", {}, el("h3", {}, "How the surrogate was trained"),
    el("div", { class: "note" }, Object.entries(method.training).map(([k, v]) => k + "=" + v).join(", ")), table);
}

function renderMethod() {
  const method = state.data.methods[state.method] || state.data.methods[state.data.order[0]];
  const box = $("method");
  if (method.error) { box.replaceChildren(el("h2", {}, method.label), el("div", { class: "method-error" }, method.error)); return; }
  box.replaceChildren(
    el("h2", { id: "method-label" }, method.label),
    el("div", { class: "formula" }, method.formula),
    el("div", { class: "note" }, "settings: " + JSON.stringify(method.settings)),
    el("h3", {}, "Samples and the program's output"), renderSamples(method),
    el("h3", {}, "Aggregation (hover a term to see its probabilities)"), renderTerms(method),
    el("h3", {}, "Output vector"), renderBars(method),
    el("p", {}, "loss ", num("b", method.loss, { id: "loss" }), "estimate" in method ? el("span", {}, "  (p\u0302(y) = ", num("span", method.estimate, { id: "estimate" }), ")") : ""),
    el("h3", {}, "Gradient w.r.t. each input probability, beside the exact one"), renderGradient(method),
    renderHistory(method));
}

async function recompute(change) {
  $("error").textContent = "";
  if (!SERVER) { return; }
  const data = state.data;
  const probs = data.probs.map((row) => row.slice());
  if (change.edited) { const [v, c, p] = change.edited; probs[v][c] = p; }
  const body = { program: change.program || state.program, seed: change.seed ?? data.seed, k: Number($("k").value),
    semiring: state.semiring, target_index: change.program ? null : Number($("target").value),
    probs: change.program ? null : probs, edited: change.edited || null };
  document.body.setAttribute("data-busy", "1");
  try {
    const response = await fetch("api/explain", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const reply = await response.json();
    if (!response.ok) { $("error").textContent = reply.error; return; }
    state.data = reply;
    state.program = body.program;
    renderExample();
  } catch (error) {
    $("error").textContent = "request failed: " + error;
  } finally {
    document.body.setAttribute("data-busy", "0");
  }
}

function staticDraw() {
  state.data = BOOT.draws[state.semiring][state.draw];
  renderExample();
}

function setUpControls() {
  const select = $("program");
  select.replaceChildren(...BOOT.programs.map((p) => el("option", { value: p.key }, p.label)));
  select.value = state.program;
  if (SERVER) {
    $("mode-note").textContent = "live: every change is recomputed by the library";
    $("edit-note").textContent = "Edit a probability (the others of its input are rescaled to sum to 1) or the target; every number is recomputed by the library.";
    select.addEventListener("change", () => recompute({ program: select.value, seed: state.data.seed }));
    $("target").addEventListener("change", () => recompute({}));
    $("k").addEventListener("change", () => recompute({}));
    $("semiring").addEventListener("change", () => { state.semiring = $("semiring").value; recompute({}); });
    $("resample").addEventListener("click", () => recompute({ seed: state.data.seed + 1 }));
  } else {
    $("mode-note").textContent = "offline page: precomputed draws";
    $("edit-note").textContent = "This offline page holds precomputed draws (Resample cycles through them). To edit the distributions, the target, k or the program, run `blackprop explain`.";
    for (const id of ["program", "target", "k"]) $(id).setAttribute("disabled", "disabled");
    $("semiring").addEventListener("change", () => { state.semiring = $("semiring").value; staticDraw(); });
    $("resample").addEventListener("click", () => { state.draw = (state.draw + 1) % BOOT.draws[state.semiring].length; staticDraw(); });
  }
}

// ---- gallery ----
let gallery = BOOT.gallery;
function renderGallery() {
  const grid = $("gallery-grid");
  if (!BOOT.gallery_enabled) { $("gallery-note").textContent = "gallery left out (--no-gallery)"; return; }
  if (!gallery) {
    $("gallery-note").textContent = "loading the tasks' data and models...";
    fetch("api/gallery").then((r) => r.json()).then((g) => { gallery = g; renderGallery(); })
      .catch((error) => { $("gallery-note").textContent = "gallery failed: " + error; });
    return;
  }
  $("gallery-note").textContent = gallery.note;
  grid.replaceChildren(...gallery.tasks.map((task, i) => el("div", { class: "thumb", "data-task": task.name, onclick: () => openTask(i) },
    task.thumbnail ? el("img", { src: task.thumbnail, alt: task.name }) : el("div", { class: "note" }, "no data here"),
    el("div", {}, el("b", {}, task.name)), el("div", { class: "note" }, task.description))));
}
function openTask(i) {
  const task = gallery.tasks[i];
  document.querySelectorAll(".thumb").forEach((n, j) => n.classList.toggle("active", i === j));
  const detail = $("gallery-detail");
  detail.classList.remove("hidden");
  const examples = task.examples.map((ex) => el("div", { class: "example" },
    el("span", {}, ...ex.images.map((src) => el("img", { src: src, alt: "input" }))),
    el("span", { class: "symbols" }, "reads: " + ex.symbols.map(show).join(" ")),
    el("span", { class: "program-output" }, "program output: " + show(ex.output)),
    el("span", { class: "label note" }, "label: " + show(ex.label))));
  detail.replaceChildren(el("h2", { id: "task-name" }, task.name + ": " + task.description),
    el("div", { class: "note" }, "symbols read by " + task.model + "; " + task.data_note), ...examples,
    el("h3", {}, "The program"), el("pre", { class: "source" }, task.source));
}

function route() {
  const gallerySelected = location.hash === "#gallery";
  $("view-gallery").classList.toggle("hidden", !gallerySelected);
  $("view-explain").classList.toggle("hidden", gallerySelected);
  $("nav-gallery").classList.toggle("active", gallerySelected);
  $("nav-explain").classList.toggle("active", !gallerySelected);
  if (gallerySelected) renderGallery();
}

setUpControls();
renderExample();
window.addEventListener("hashchange", route);
route();
document.body.setAttribute("data-ready", "1");

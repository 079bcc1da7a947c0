// ecgscope viewer: upload one ECG to /v1/predict, draw it on ECG paper, show the answer, overlay /v1/explain.
// No framework, no CDN: the page works offline against the service that serves it.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const MM_PER_S = 25, MM_PER_MV = 10, ROW_MM = 30, WIDTH_MM = 250, LEFT_MM = 2, TOP_MM = 2;
const LAYOUT = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]];
const state = { file: null, answer: null, explanations: {}, models: [] };
const $ = (id) => document.getElementById(id);

function headers(extra = {}) {
  const key = $("api-key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  return q.toString();
}

async function call(path, params, body) {
  const response = await fetch(`${path}?${query(params)}`, {
    method: body ? "POST" : "GET", body,
    headers: headers(body ? { "Content-Type": "application/octet-stream" } : {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
    throw new Error(`${response.status}: ${detail}`);
  }
  return data;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function loadModels() {
  const select = $("model");
  try {
    state.models = await call("/v1/models", {});
  } catch (error) {
    $("model-info").textContent = error.message.startsWith("401") ? "enter the API key to list the models" : error.message;
    return;
  }
  select.replaceChildren(...state.models.map((m) => el("option", { value: m.name }, `${m.name} (${m.version})`)));
  showModel();
}

function currentModel() {
  return state.models.find((m) => m.name === $("model").value) || state.models[0];
}

function showModel() {
  const model = currentModel();
  if (!model) return;
  $("model-info").textContent = `${model.architecture}; input ${model.contract}`;
  $("card").textContent = model.model_card_markdown || "This model directory has no model card.";
  const targets = [...model.targets.regression, ...model.targets.binary, ...model.targets.survival];
  $("target").replaceChildren(...targets.map((t) => el("option", { value: t }, t)));
}

function setStatus(status, text, reasons = []) {
  $("status").dataset.status = status;
  $("status").textContent = text;
  $("reasons").replaceChildren(...reasons.map((r) => el("li", {}, r)));
}

function fmt(value, digits = 1) {
  return Number.isFinite(value) ? value.toFixed(digits) : "-";
}

function showAnswer(answer) {
  const ok = answer.status === "result";
  setStatus(answer.status, ok ? "Result" : "Cannot assess this ECG", answer.reasons);
  $("targets").tBodies[0].replaceChildren(...Object.entries(answer.targets).map(([name, t]) => {
    const row = el("tr", { "data-target": name });
    row.append(el("td", {}, name), el("td", { "data-value": t.value }, fmt(t.value)),
      el("td", { "data-lower": t.lower, "data-upper": t.upper },
        t.lower !== undefined ? `${fmt(t.lower)} to ${fmt(t.upper)} (${Math.round(100 * t.coverage)} %)` : "-"));
    return row;
  }));
  $("phenotypes").tBodies[0].replaceChildren(...Object.entries(answer.phenotypes).map(([name, p]) => {
    const row = el("tr", { "data-phenotype": name });
    row.append(el("td", {}, name), el("td", { "data-probability": p.probability }, fmt(p.probability, 2)),
      el("td", {}, fmt(p.threshold, 2)),
      el("td", { class: p.flag ? "flag-yes" : "", "data-flag": String(p.flag) }, p.flag ? "yes" : "no"));
    return row;
  }));
  const c = answer.checks, items = [];
  const add = (text, bad = false) => items.push(el("li", bad ? { class: "bad" } : {}, text));
  if (c.snr_db) add(`signal-to-noise ${fmt(c.snr_db.median)} dB (median lead)`, c.snr_db.median < 6);
  if (c.flat_leads) add(c.flat_leads.length ? `flat: ${c.flat_leads.join(", ")}` : "no flat lead", c.flat_leads.length > 0);
  if (c.limb_reversal !== undefined) add(c.limb_reversal ? `limb reversal: ${c.limb_reversal}` : "no limb-electrode reversal suspected", !!c.limb_reversal && !String(c.limb_reversal).startsWith("not"));
  if (c.pacing_spikes !== undefined) add(typeof c.pacing_spikes === "number" ? `${c.pacing_spikes} pacing spikes` : `pacing: ${c.pacing_spikes}`, c.pacing_spikes >= 3);
  if (c.ood && typeof c.ood === "object") add(`farther from the training data than ${fmt(c.ood.percentile)} % of held-out ECGs (limit ${c.ood.far_percentile} %)`, c.ood.far);
  if (c.contract) add(c.contract === "fits" ? "fits the model's input contract" : c.contract, c.contract !== "fits");
  for (const w of c.warnings || []) add(`warning: ${w}`);
  $("checks").replaceChildren(...items);
}

function drawGrid(chart, width, height) {
  let minor = "", major = "";
  for (let x = 0; x <= width + 1e-6; x += 1) (x % 5 ? (s) => (minor += s) : (s) => (major += s))(`M${LEFT_MM + x} ${TOP_MM}V${TOP_MM + height}`);
  for (let y = 0; y <= height + 1e-6; y += 1) (y % 5 ? (s) => (minor += s) : (s) => (major += s))(`M${LEFT_MM} ${TOP_MM + y}H${LEFT_MM + width}`);
  chart.append(svg("path", { d: minor, class: "grid-minor", id: "grid-minor" }),
    svg("path", { d: major, class: "grid-major", id: "grid-major" }));
}

// Each panel: a lead, its first sample, its sample count, and where it sits on the page (mm).
function panels(signal) {
  const fs = signal.fs, per = Math.round(2.5 * fs), out = [];
  LAYOUT.forEach((row, r) => row.forEach((lead, c) => out.push(
    { lead, start: c * per, count: per, x: c * 62.5, baseline: TOP_MM + ROW_MM * (r + 0.5) })));
  out.push({ lead: "II", start: 0, count: Math.round(10 * fs), x: 0, baseline: TOP_MM + ROW_MM * 3.5, rhythm: true });
  return out;
}

function drawChart(signal) {
  const chart = $("ecg-chart");
  chart.replaceChildren();
  drawGrid(chart, WIDTH_MM, ROW_MM * 4);
  chart.append(svg("g", { id: "overlay-layer" }));
  const index = Object.fromEntries(signal.leads.map((l, i) => [l, i]));
  for (const p of panels(signal)) {
    const samples = signal.samples[index[p.lead]].slice(p.start, p.start + p.count);
    let d = "";
    samples.forEach((v, i) => {
      const x = LEFT_MM + p.x + (i / signal.fs) * MM_PER_S;
      const y = p.baseline - Math.max(-1.5, Math.min(1.5, v)) * MM_PER_MV;
      d += `${i ? "L" : "M"}${x.toFixed(2)} ${y.toFixed(2)}`;
    });
    chart.append(svg("path", { d, class: "trace", "data-lead": p.lead, ...(p.rhythm ? { "data-rhythm": "true" } : {}) }));
    const label = svg("text", { x: LEFT_MM + p.x + 1, y: p.baseline - 10, class: "label" });
    label.textContent = p.lead;
    chart.append(label);
  }
}

function drawOverlay(explanation) {
  const layer = $("overlay-layer");
  layer.replaceChildren();
  if (!explanation || !state.answer || !state.answer.signal) return;
  const fs = explanation.fs, bin = Math.max(1, Math.round(0.04 * fs));
  const leadIndex = Object.fromEntries(explanation.leads.map((l, i) => [l, i]));
  const binned = explanation.attribution.map((row) => {
    const out = [];
    for (let i = 0; i < row.length; i += bin) out.push(row.slice(i, i + bin).reduce((s, v) => s + Math.abs(v), 0));
    return out;
  });
  const peak = Math.max(...binned.map((r) => Math.max(...r))) || 1;
  for (const p of panels(state.answer.signal)) {
    const values = binned[leadIndex[p.lead]];
    if (!values) continue;
    const t0 = p.start / state.answer.signal.fs, t1 = (p.start + p.count) / state.answer.signal.fs;
    values.forEach((v, k) => {
      const t = (k * bin) / fs;
      if (t < t0 || t >= t1 || v / peak < 0.05) return;
      layer.append(svg("rect", {
        x: LEFT_MM + p.x + (t - t0) * MM_PER_S, y: p.baseline - ROW_MM / 2 + 1, width: (bin / fs) * MM_PER_S,
        height: ROW_MM - 2, class: "attribution", "fill-opacity": (0.6 * v / peak).toFixed(3), "data-lead": p.lead,
      }));
    });
  }
}

async function updateOverlay() {
  const on = $("overlay").checked, target = $("target").value;
  if (!on || !state.file) { drawOverlay(null); $("overlay-info").textContent = ""; return; }
  try {
    if (!state.explanations[target]) {
      $("overlay-info").textContent = `explaining ${target}...`;
      state.explanations[target] = await call("/v1/explain", { ...options(), target }, state.file);
    }
    const e = state.explanations[target];
    const top = Object.entries(e.lead_importance).sort((a, b) => b[1] - a[1]).slice(0, 3);
    $("overlay-info").textContent = `${target}: most attribution in ${top.map(([l, s]) => `${l} ${Math.round(100 * s)} %`).join(", ")}`;
    if ($("overlay").checked && $("target").value === target) drawOverlay(e);
  } catch (error) {
    $("overlay-info").textContent = `no explanation: ${error.message}`;
  }
}

function options() {
  return { model: $("model").value, fs: $("fs").value, units: $("units").value };
}

async function assess(file) {
  state.file = file;
  state.explanations = {};
  state.answer = null;
  setStatus("busy", "Assessing...");
  try {
    if (!state.models.length) await loadModels();
    const answer = await call("/v1/predict", { ...options(), include_signal: "true" }, file);
    state.answer = answer;
    showAnswer(answer);
    if (answer.signal) drawChart(answer.signal);
    document.body.dataset.ready = "true";
    await updateOverlay();
  } catch (error) {
    setStatus("error", "The ECG could not be read", [error.message]);
  }
}

function setUp() {
  const drop = $("drop"), input = $("file"), key = $("api-key");
  key.value = sessionStorage.getItem("ecgscope-key") || "";
  key.addEventListener("change", () => { sessionStorage.setItem("ecgscope-key", key.value); loadModels(); });
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) assess(e.dataTransfer.files[0]);
  });
  input.addEventListener("change", () => { if (input.files.length) assess(input.files[0]); });
  $("model").addEventListener("change", () => { showModel(); if (state.file) assess(state.file); });
  $("target").addEventListener("change", updateOverlay);
  $("overlay").addEventListener("change", updateOverlay);
  $("print").addEventListener("click", () => window.print());
  drawGrid($("ecg-chart"), WIDTH_MM, ROW_MM * 4);
  loadModels();
}

document.addEventListener("DOMContentLoaded", setUp);

// The workspace page: wires the runs browser, the viewer, methods and jobs, results, corrections and plots.

import { api, decodeRLE, encodeRLE, fetchBlob, uploadFile } from "./api.js";
import { drawPlot, frameAt } from "./plots.js";
import { Viewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const TERMINAL = new Set(["done", "failed", "cancelled"]);
const RESULT_OPACITY = 0.45;
const ANNOTATION_OPACITY = 0.7;

const state = {
  run: null, frame: 0, timer: null, browsePath: "",
  frames: new Map(), masks: new Map(), loadedMasks: new Map(), annotations: new Map(),
  results: [], active: null, layers: new Map(), stats: null,
  methods: [], jobs: new Map(), localNames: new Map(), strokeBefore: null,
};

const viewer = new Viewer($("canvas"), { strokeStart, stroke: sendStroke, pick: sendPick });

// ---- status and small helpers ------------------------------------------------------------------
function setStatus(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

function report(error) { setStatus(error.message || String(error), true); }

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

function runUrl(suffix = "") { return `/api/runs/${state.run.id}${suffix}`; }

// ---- browsing, opening and uploading runs ------------------------------------------------------
async function browse(path) {
  const listing = await api(`/api/browse?path=${encodeURIComponent(path)}`);
  state.browsePath = listing.path;
  $("browse-path").textContent = `/${listing.path}`;
  $("browse-up").disabled = listing.parent === null;
  $("browse-up").onclick = () => browse(listing.parent || "").catch(report);
  const list = $("browse-list");
  list.replaceChildren();
  for (const entry of listing.entries) {
    const name = element("span", { className: "name", textContent: entry.kind === "folder" ? `${entry.name}/` : entry.name });
    name.dataset.path = entry.path;
    const item = element("li", {}, name);
    if (entry.kind === "folder") {
      name.onclick = () => browse(entry.path).catch(report);
      item.append(element("button", { textContent: "open", title: "open this folder as a run (DICOM or image series)",
        onclick: () => openRun(entry.path) }));
    } else {
      name.onclick = () => openRun(entry.path);
      name.title = "open this run";
      if (!entry.likely_run) name.classList.add("unlikely");
      item.append(element("span", { className: "meta", textContent: formatSize(entry.size) }));
    }
    list.append(item);
  }
  if (!listing.entries.length) list.append(element("li", { className: "hint", textContent: "empty folder" }));
}

function formatSize(bytes) {
  if (bytes === null) return "";
  const units = ["B", "kB", "MB", "GB"];
  let value = bytes, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return `${value.toFixed(value < 10 && unit ? 1 : 0)} ${units[unit]}`;
}

async function openRun(path) {
  setStatus("reading the run…");
  try {
    const run = await api("/api/runs/open", { method: "POST", json: { path } });
    await selectRun(run);
    setStatus(`opened ${run.name}`);
  } catch (error) { report(error); }
}

async function upload(file) {
  const bar = $("upload-progress");
  bar.hidden = false; bar.value = 0;
  setStatus("uploading…");
  try {
    const run = await uploadFile(file, (fraction) => { bar.value = fraction; });
    state.localNames.set(run.id, file.name);
    await selectRun(run);
    setStatus("upload opened");
  } catch (error) { report(error); } finally { bar.hidden = true; }
}

async function refreshRunList() {
  const runs = await api("/api/runs");
  const list = $("run-list");
  list.replaceChildren();
  for (const run of runs) {
    const shown = state.localNames.get(run.id) || run.name;
    const name = element("span", { className: "name", textContent: shown, title: `${run.frames} frames, ${run.width} x ${run.height}` });
    name.onclick = () => api(`/api/runs/${run.id}`).then(selectRun).catch(report);
    const close = element("button", { textContent: "×", title: "close this run", onclick: () => closeRun(run.id) });
    const item = element("li", {}, name, close);
    item.classList.toggle("selected", state.run && state.run.id === run.id);
    list.append(item);
  }
}

async function closeRun(id) {
  try {
    await api(`/api/runs/${id}`, { method: "DELETE" });
    if (state.run && state.run.id === id) clearRun();
    await refreshRunList();
  } catch (error) { report(error); }
}

function clearRun() {
  pause();
  state.run = null; state.results = []; state.active = null; state.stats = null;
  state.frames.clear(); state.masks.clear(); state.loadedMasks.clear(); state.annotations.clear(); state.layers.clear();
  $("run-title").textContent = "no run open";
  viewer.setImage(null);
  renderResults(); renderPlots(); updateControls();
}

async function selectRun(run) {
  const same = state.run && state.run.id === run.id;
  if (!same) {
    clearRun();
    state.run = run;
    viewer.setFrameSize(run.width, run.height);
    $("frame-slider").max = run.frames - 1;
  }
  state.run = run;
  const shown = state.localNames.get(run.id) || run.name;
  const fps = run.fps ? `${run.fps.toFixed(1)} fps` : "fps unknown";
  $("run-title").textContent = `${shown} · ${run.frames} frames · ${run.width} × ${run.height} · ${fps}`;
  updateLabels(run.label_table, run.colours);
  updateAnnotated(run.annotated_frames);
  await refreshRunList();
  await loadResults(run.results);
  updateControls();
  await showFrame(same ? state.frame : 0);
  prefetchFrames();
}

function updateControls() {
  const open = Boolean(state.run);
  $("run-method").disabled = !open;
  $("propagate").disabled = !open || !state.run.annotated_frames.length;
  for (const button of document.querySelectorAll("#downloads button")) button.disabled = !state.active;
}

// ---- frames ----------------------------------------------------------------------------------------
async function decodeGrey(blob) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const scratch = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = scratch.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const grey = new Uint8Array(bitmap.width * bitmap.height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i];
  return grey;
}

function loadFrame(t) {
  if (!state.frames.has(t)) {
    const run = state.run;
    const promise = fetchBlob(`/api/runs/${run.id}/frames/${t}.png`).then((file) => decodeGrey(file.blob));
    promise.catch(() => state.frames.delete(t));
    state.frames.set(t, promise);
  }
  return state.frames.get(t);
}

async function prefetchFrames() {
  const run = state.run;
  for (let t = 0; t < run.frames && state.run === run; t++) {
    try { await loadFrame(t); } catch { return; }
  }
}

function loadMask(resultId, t) {
  const key = `${resultId}:${t}`;
  if (!state.masks.has(key)) {
    const promise = api(runUrl(`/results/${resultId}/masks/${t}`)).then((data) => {
      const labels = decodeRLE(data.rle);
      state.loadedMasks.set(key, labels);
      return labels;
    });
    promise.catch(() => state.masks.delete(key));
    state.masks.set(key, promise);
  }
  return state.masks.get(key);
}

async function loadAnnotation(t) {
  if (!state.run.annotated_frames.includes(t)) return null;
  if (!state.annotations.has(t)) {
    const data = await api(runUrl(`/annotations/${t}`));
    state.annotations.set(t, decodeRLE(data.rle));
  }
  return state.annotations.get(t);
}

async function showFrame(t) {
  if (!state.run) return;
  const frames = state.run.frames;
  t = Math.min(frames - 1, Math.max(0, t));
  state.frame = t;
  $("frame-slider").value = t;
  $("frame-label").textContent = `${t + 1} / ${frames}`;
  try {
    const grey = await loadFrame(t);
    if (state.frame !== t) return;
    await renderLayers();
    viewer.setImage(grey);
  } catch (error) { report(error); }
  renderPlots();
}

async function renderLayers() {
  const t = state.frame;
  const layers = [];
  for (const result of state.results) {
    const settings = state.layers.get(result.id);
    if (!settings.visible) continue;
    layers.push({ labels: await loadMask(result.id, t), colours: settings.colours, hidden: settings.hidden, opacity: settings.opacity });
  }
  if ($("show-annotation").checked) {
    const labels = await loadAnnotation(t);
    if (labels) layers.push({ labels, colours: state.run.colours, hidden: new Set(), opacity: ANNOTATION_OPACITY });
  }
  if (state.frame === t) viewer.setLayers(layers);
}

// ---- playback, keyboard, window/level -----------------------------------------------------------
function play() {
  if (!state.run || state.timer) return;
  const interval = 1000 / (state.run.fps || 15);
  state.timer = setInterval(() => showFrame((state.frame + 1) % state.run.frames), interval);
  $("play").innerHTML = "&#10074;&#10074;";
}

function pause() {
  clearInterval(state.timer);
  state.timer = null;
  $("play").innerHTML = "&#9654;";
}

function onKey(event) {
  const tag = event.target.tagName;
  if ((tag === "INPUT" && event.target.type !== "range" && event.target.type !== "radio" && event.target.type !== "checkbox")
      || tag === "SELECT" || tag === "TEXTAREA") return;
  const keys = { ArrowLeft: -1, ArrowRight: 1 };
  if (event.key in keys && state.run) {
    event.preventDefault();
    pause();
    showFrame(state.frame + keys[event.key]);
  } else if (event.key === " " && state.run) {
    event.preventDefault();
    state.timer ? pause() : play();
  } else if ({ b: "brush", e: "eraser", p: "pick", h: "pan" }[event.key]) {
    chooseTool({ b: "brush", e: "eraser", p: "pick", h: "pan" }[event.key]);
  }
}

function chooseTool(tool) {
  $(`tool-${tool}`).checked = true;
  viewer.setTool(tool);
}

function applyWindow() { viewer.setWindow(Number($("level").value), Number($("window").value)); }

// ---- methods and jobs --------------------------------------------------------------------------
async function loadMethods() {
  state.methods = await api("/api/methods");
  const select = $("method-select"), propagators = $("propagate-select");
  for (const method of state.methods) {
    const option = element("option", { value: method.name, textContent: method.ready ? method.name : `${method.name} (weights missing)` });
    option.disabled = !method.ready;
    (method.propagates ? propagators : select).append(option);
  }
  const preferred = state.methods.find((m) => m.name === "seq-cenet" && m.ready) || state.methods.find((m) => !m.propagates && m.ready);
  if (preferred) select.value = preferred.name;
  if (state.methods.some((m) => m.name === "fsvos")) propagators.value = "fsvos";
  showMethodOptions();
}

function showMethodOptions() {
  const method = state.methods.find((m) => m.name === $("method-select").value);
  $("method-description").textContent = method ? method.description : "";
  const box = $("method-options");
  box.replaceChildren();
  for (const option of method ? method.options : []) {
    let input;
    if (typeof option.default === "boolean") {
      input = element("select", {}, element("option", { value: "", textContent: `default (${option.default})` }),
        element("option", { value: "true", textContent: "true" }), element("option", { value: "false", textContent: "false" }));
    } else {
      input = element("input", { placeholder: option.default === null ? "" : String(option.default) });
    }
    input.dataset.option = option.name;
    box.append(element("label", { textContent: option.name }), input);
  }
}

function methodOptions() {
  const options = {};
  for (const input of document.querySelectorAll("#method-options [data-option]")) {
    if (input.value.trim() !== "") options[input.dataset.option] = input.value.trim();
  }
  return options;
}

async function runMethod() {
  try {
    const job = await api(runUrl("/segment"), { method: "POST", json: { method: $("method-select").value, options: methodOptions() } });
    followJob(job);
  } catch (error) { report(error); }
}

async function propagate() {
  try {
    const job = await api(runUrl("/propagate"), { method: "POST", json: { method: $("propagate-select").value } });
    followJob(job);
  } catch (error) { report(error); }
}

function followJob(job) {
  updateJob(job);
  const source = new EventSource(`/api/jobs/${job.id}/events`);
  source.onmessage = (event) => {
    const current = JSON.parse(event.data);
    updateJob(current);
    if (TERMINAL.has(current.state)) { source.close(); jobEnded(current); }
  };
  source.onerror = () => { source.close(); pollJob(job.id); };
}

async function pollJob(id) {
  try {
    const current = await api(`/api/jobs/${id}`);
    updateJob(current);
    if (TERMINAL.has(current.state)) jobEnded(current);
    else setTimeout(() => pollJob(id), 500);
  } catch (error) { report(error); }
}

async function jobEnded(job) {
  if (job.state === "done") setStatus(`${job.title}: done in ${job.elapsed_s.toFixed(1)} s`);
  else if (job.state === "failed") setStatus(`${job.title}: ${job.message}`, true);
  else setStatus(`${job.title}: cancelled`);
  if (job.state === "done" && state.run && state.run.id === job.run) {
    const run = await api(runUrl());
    await loadResults(run.results, job.result);
    await showFrame(state.frame);
  }
}

function updateJob(job) {
  state.jobs.set(job.id, job);
  const list = $("job-list");
  let item = list.querySelector(`[data-job="${job.id}"]`);
  if (!item) {
    item = element("li");
    item.dataset.job = job.id;
    list.prepend(item);
  }
  const bar = element("progress", { max: 1 });
  if (job.progress !== null) bar.value = job.progress;
  const cancel = element("button", { textContent: "cancel", onclick: () => api(`/api/jobs/${job.id}/cancel`, { method: "POST" }).catch(report) });
  cancel.disabled = TERMINAL.has(job.state);
  const title = element("span", { className: "name", textContent: job.title, title: job.message || job.title });
  item.dataset.state = job.state;
  item.replaceChildren(title, bar, element("span", { className: "state", textContent: job.state }), cancel);
}

// ---- results -----------------------------------------------------------------------------------------
async function loadResults(results, activate = null) {
  state.results = results;
  for (const result of results) {
    if (!state.layers.has(result.id)) {
      const colours = Object.fromEntries(Object.entries(result.colours).map(([id, c]) => [id, [...c]]));
      state.layers.set(result.id, { visible: true, opacity: RESULT_OPACITY, colours, hidden: new Set() });
    }
  }
  for (const id of [...state.layers.keys()]) if (!results.some((r) => r.id === id)) state.layers.delete(id);
  if (activate) {
    for (const [id, settings] of state.layers) settings.visible = id === activate;
  }
  if (activate || !results.some((r) => r.id === state.active)) state.active = activate || (results.length ? results.at(-1).id : null);
  renderResults();
  updateControls();
  await loadStats();
}

function renderResults() {
  const list = $("result-list");
  list.replaceChildren();
  const base = $("base-result");
  const chosen = base.value;
  base.replaceChildren(element("option", { value: "", textContent: "nothing" }));
  for (const result of state.results) {
    const settings = state.layers.get(result.id);
    const visible = element("input", { type: "checkbox", checked: settings.visible, title: "show this result" });
    visible.onchange = () => { settings.visible = visible.checked; renderLayers(); };
    const active = element("input", { type: "radio", name: "active-result", checked: state.active === result.id, title: "plots and downloads use this result" });
    active.onchange = () => { state.active = result.id; updateControls(); loadStats(); renderResults(); };
    const remove = element("button", { textContent: "×", title: "delete this result", onclick: () => deleteResult(result.id) });
    const head = element("div", { className: "row" }, active, visible, element("span", { className: "name", textContent: result.title }), remove);
    const opacity = element("input", { type: "range", min: 0, max: 1, step: 0.05, value: settings.opacity, title: "opacity" });
    opacity.oninput = () => { settings.opacity = Number(opacity.value); renderLayers(); };
    const labels = element("div", { className: "labels" });
    for (const [id, name] of Object.entries(result.label_table)) {
      if (id === "0") continue;
      const show = element("input", { type: "checkbox", checked: !settings.hidden.has(Number(id)), title: `show ${name}` });
      show.onchange = () => { show.checked ? settings.hidden.delete(Number(id)) : settings.hidden.add(Number(id)); renderLayers(); };
      const colour = element("input", { type: "color", value: toHex(settings.colours[id]), title: `colour of ${name}` });
      colour.oninput = () => { settings.colours[id] = fromHex(colour.value); renderLayers(); };
      labels.append(element("label", {}, show, colour, name));
    }
    const item = element("li", {}, head, element("div", { className: "row" }, element("span", { className: "meta", textContent: "opacity" }), opacity), labels);
    item.dataset.result = result.id;
    item.classList.toggle("selected", state.active === result.id);
    list.append(item);
    base.append(element("option", { value: result.id, textContent: result.title }));
  }
  base.value = state.results.some((r) => r.id === chosen) ? chosen : (state.active || "");
}

const toHex = (rgb) => `#${rgb.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
const fromHex = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

async function deleteResult(id) {
  try {
    await api(runUrl(`/results/${id}`), { method: "DELETE" });
    const run = await api(runUrl());
    await loadResults(run.results);
    await showFrame(state.frame);
  } catch (error) { report(error); }
}

async function download(kind) {
  if (!state.active) return;
  setStatus(`preparing ${kind}…`);
  try {
    const file = await fetchBlob(runUrl(`/results/${state.active}/download/${kind}`));
    const link = element("a", { href: URL.createObjectURL(file.blob), download: file.name || kind });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    setStatus(`downloaded ${file.name || kind}`);
  } catch (error) { report(error); }
}

// ---- plots -------------------------------------------------------------------------------------------
async function loadStats() {
  state.stats = null;
  if (state.run && state.active) {
    try { state.stats = await api(runUrl(`/results/${state.active}/stats`)); } catch (error) { report(error); }
  }
  renderPlots();
}

function renderPlots() {
  const stats = state.stats;
  const frames = stats ? stats.frames : 0;
  const mm2 = stats && stats.labels.length && stats.labels[0].area_mm2;
  $("area-caption").textContent = `Area per frame (${mm2 ? "mm²" : "pixels"})`;
  const area = stats ? stats.labels.map((l) => {
    const settings = state.layers.get(state.active);
    return { name: l.name, colour: settings && settings.colours[l.id] ? settings.colours[l.id] : l.colour, values: mm2 ? l.area_mm2 : l.area_px };
  }) : [];
  drawPlot($("area-plot"), { series: area, frames, current: state.frame, message: "run a method to plot vessel area" });
  const confidence = stats && stats.confidence ? [{ name: "confidence", colour: [120, 200, 255], values: stats.confidence }] : [];
  drawPlot($("confidence-plot"), { series: confidence, frames, current: state.frame, yMax: 1,
    message: stats ? "this method gives no confidence (propagation does)" : "propagate to plot confidence" });
}

// ---- corrections ---------------------------------------------------------------------------------------
function updateLabels(table, colours) {
  state.run.label_table = table;
  state.run.colours = colours;
  const select = $("label-select");
  const chosen = select.value;
  select.replaceChildren();
  for (const [id, name] of Object.entries(table)) {
    if (id !== "0") select.append(element("option", { value: id, textContent: `${id} ${name}` }));
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

function updateAnnotated(frames) {
  state.run.annotated_frames = frames;
  const box = $("annotated-frames");
  box.replaceChildren();
  if (!frames.length) box.textContent = "none";
  frames.forEach((t, i) => {
    box.append(element("a", { href: "#", textContent: String(t), onclick: (event) => { event.preventDefault(); pause(); showFrame(t); } }));
    if (i < frames.length - 1) box.append(", ");
  });
  updateControls();
}

function applyAnnotationState(data) {
  state.annotations.set(data.frame, decodeRLE(data.rle));
  updateLabels(data.label_table, data.colours);
  updateAnnotated(data.annotated_frames);
}

/** The labels a stroke edits in place: the frame's annotation, started from the chosen result or empty. */
function strokeStart() {
  if (!state.run) return null;
  const t = state.frame;
  let labels = state.annotations.get(t);
  const before = labels ? labels.slice() : null;
  if (!labels || !state.run.annotated_frames.includes(t)) {
    labels = new Uint8Array(state.run.width * state.run.height);
    const base = $("base-result").value;
    const start = base ? state.loadedMasks.get(`${base}:${t}`) : null;
    if (start) labels.set(start);
    state.annotations.set(t, labels);
    $("show-annotation").checked = true;
    renderLayers();
  }
  state.strokeBefore = before;
  const erase = viewer.tool === "eraser";
  return { labels, label: Number($("label-select").value || 1), erase };
}

async function sendStroke(mask, op) {
  const t = state.frame;
  const body = { op, label: Number($("label-select").value || 1), mask: { rle: encodeRLE(mask, state.run.height, state.run.width) } };
  if (!state.run.annotated_frames.includes(t) && $("base-result").value) body.base_result = $("base-result").value;
  try {
    applyAnnotationState(await api(runUrl(`/annotations/${t}`), { method: "POST", json: body }));
  } catch (error) {
    report(error);
    if (state.strokeBefore) state.annotations.set(t, state.strokeBefore); else state.annotations.delete(t);
  }
  renderLayers();
}

async function sendPick(x, y) {
  const body = { frame: state.frame, x, y, label: Number($("label-select").value || 1), filter: $("pick-filter").value };
  if (!state.run.annotated_frames.includes(state.frame) && $("base-result").value) body.base_result = $("base-result").value;
  setStatus("finding the vessel under the click…");
  try {
    const data = await api(runUrl("/pick"), { method: "POST", json: body });
    if (!data.pixels) { setStatus("no vessel within reach of the click", true); return; }
    applyAnnotationState(data);
    setStatus(`picked ${data.pixels} pixels`);
    renderLayers();
  } catch (error) { report(error); }
}

async function clearFrame() {
  if (!state.run) return;
  try {
    const data = await api(runUrl(`/annotations/${state.frame}`), { method: "DELETE" });
    state.annotations.delete(state.frame);
    updateAnnotated(data.annotated_frames);
    renderLayers();
  } catch (error) { report(error); }
}

async function addLabel() {
  const name = $("new-label").value.trim();
  if (!name || !state.run) return;
  try {
    const data = await api(runUrl("/labels"), { method: "POST", json: { name } });
    updateLabels(data.label_table, data.colours);
    const id = Object.entries(data.label_table).find(([, n]) => n === name)[0];
    $("label-select").value = id;
    $("new-label").value = "";
  } catch (error) { report(error); }
}

// ---- wiring ------------------------------------------------------------------------------------------------
function wire() {
  $("upload-input").onchange = (event) => { if (event.target.files[0]) upload(event.target.files[0]); event.target.value = ""; };
  $("frame-slider").oninput = (event) => { pause(); showFrame(Number(event.target.value)); };
  $("play").onclick = () => (state.timer ? pause() : play());
  $("fit").onclick = () => viewer.fit();
  $("level").oninput = applyWindow;
  $("window").oninput = applyWindow;
  $("wl-reset").onclick = () => { $("level").value = 0.5; $("window").value = 1; applyWindow(); };
  $("method-select").onchange = showMethodOptions;
  $("run-method").onclick = runMethod;
  $("propagate").onclick = propagate;
  for (const radio of document.querySelectorAll("input[name=tool]")) radio.onchange = () => viewer.setTool(radio.value);
  $("brush-size").oninput = (event) => { viewer.setBrushSize(Number(event.target.value)); $("brush-size-label").textContent = event.target.value; };
  $("show-annotation").onchange = renderLayers;
  $("clear-frame").onclick = clearFrame;
  $("add-label").onclick = addLabel;
  for (const button of document.querySelectorAll("#downloads button")) button.onclick = () => download(button.dataset.download);
  for (const id of ["area-plot", "confidence-plot"]) {
    $(id).onclick = (event) => { if (state.stats) { pause(); showFrame(frameAt($(id), event, state.stats.frames)); } };
  }
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", renderPlots);
}

wire();
updateControls();
renderPlots();
Promise.all([browse(""), loadMethods(), refreshRunList()]).then(() => setStatus("ready")).catch(report);

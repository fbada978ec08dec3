// The FACET-VLM page: reads model.json, sends one V1 :predict request, draws the answer.
// Response data only ever becomes text nodes, numbers, SVG/canvas drawings and data: images (never parsed as HTML or code).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const VIEW_NAMES = ["front", "left", "right"];
let INFO = null;
let KIND = "scan";

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

function mib(n) { return n >= 2 ** 20 ? (n / 2 ** 20).toFixed(1) + " MiB" : (n / 1024).toFixed(0) + " KiB"; }

function pct(p) { return (100 * p).toFixed(2) + " %"; }

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.classList.remove("hidden");
}

function hideError() { $("error").classList.add("hidden"); $("error").textContent = ""; }

function setStatus(text) { $("status").textContent = text; }

// -- model identity ------------------------------------------------------------------------------
function kv(dl, key, value) {
  dl.append(el("dt", {}, key), el("dd", {}, value === null || value === undefined ? "—" : value));
}

function scalar(v) { return typeof v === "object" && v !== null ? JSON.stringify(v) : String(v); }

function showInfo(info) {
  INFO = info;
  $("model-name").textContent = info.name;
  $("v1-path").textContent = info.v1_predict;
  const badges = clear($("model-badges"));
  const random = /random/i.test(String(info.weights));
  badges.append(el("span", { class: "badge" + (random ? " warn" : "") }, "weights: " + info.weights));
  badges.append(el("span", { class: "badge" }, "digest " + String(info.digest || "?").slice(0, 12)));
  const reg = info.registered;
  if (reg && reg.version) badges.append(el("span", { class: "badge" }, reg.name + " " + reg.version));

  const id = clear($("identity"));
  kv(id, "name (V1/V2 URLs)", info.name);
  if (!reg) kv(id, "registered version", "not served from the registry (a bundle folder)");
  else if (reg.error) kv(id, "registered version", reg.ref + " — lookup failed: " + reg.error);
  else {
    const alias = reg.alias ? " (alias " + reg.alias + ")" : "";
    const loaded = reg.is_loaded ? "" : " — the registry now points elsewhere; the loaded bundle differs";
    kv(id, "registered version", reg.name + " " + reg.version + alias + loaded);
  }
  kv(id, "bundle digest", info.digest);
  kv(id, "weights", info.weights + (random ? " — scores from random weights are not meaningful" : ""));
  kv(id, "CLIP model", info.clip_model);
  kv(id, "labels", info.labels.join(", "));
  kv(id, "views", info.views.join(", ") + (info.mtgf ? " · MTGF attention available" : " · no MTGF in this model"));
  kv(id, "device", info.device);
  const r = clear($("render"));
  for (const [k, v] of Object.entries(info.render)) kv(r, k, scalar(v));
  showCv(info);

  const L = info.limits;
  for (const s of document.querySelectorAll(".formats")) s.textContent = info.formats.map((f) => "." + f).join(" ");
  $("scan-file").setAttribute("accept", info.formats.map((f) => "." + f).join(","));
  $("sequence-files").setAttribute("accept", info.formats.map((f) => "." + f).join(","));
  $("limits").textContent =
    "Server limits: a scan or frame up to " + mib(L.max_scan_bytes) + " and " + L.max_vertices.toLocaleString() +
    " vertices; at most " + L.max_frames + " frames; images up to " + L.max_image_side + " px a side; at most " +
    L.max_prompts + " prompts of " + L.max_prompt_chars + " characters; a request up to " + mib(L.max_json_bytes) +
    " of JSON (the files in base64: about 4/3 of their size).";
}

function showCv(info) {
  const box = clear($("cv"));
  const cv = info.cv;
  if (!cv || typeof cv !== "object") {
    box.append(el("p", { class: "muted" }, "This bundle carries no CV summary (it was not built by the register step)."));
    return;
  }
  const chance = 1 / info.labels.length;
  const t = el("table", { class: "cv" }, el("tr", {}, el("th", {}, "metric"), el("th", {}, "value"), el("th", {}, "chance (1/K)")));
  for (const [k, v] of Object.entries(cv)) {
    const rate = typeof v === "number" && /accuracy|f1/.test(k) && !/std/.test(k);
    t.append(el("tr", {}, el("td", {}, k), el("td", {}, typeof v === "number" ? v.toFixed(4) : scalar(v)),
      el("td", {}, rate ? chance.toFixed(4) : "")));
  }
  box.append(t);
}

// -- input ---------------------------------------------------------------------------------------
function selectKind(kind) {
  KIND = kind;
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.kind === kind);
  for (const p of document.querySelectorAll(".pane")) p.classList.toggle("hidden", p.dataset.kind !== kind);
}

function ext(name) { const i = name.lastIndexOf("."); return i < 0 ? "" : name.slice(i + 1).toLowerCase(); }

function b64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).slice(String(r.result).indexOf(",") + 1));
    r.onerror = () => reject(new Error(file.name + ": could not be read"));
    r.readAsDataURL(file);
  });
}

// Client-side checks against the server's limits: nothing too large is uploaded. Returns the files.
function checkedFiles() {
  const L = INFO.limits;
  let files;
  if (KIND === "scan") files = Array.from($("scan-file").files).slice(0, 1);
  else if (KIND === "sequence") {
    files = Array.from($("sequence-files").files);
    files.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  } else files = VIEW_NAMES.map((v) => $("view-" + v).files[0]).filter(Boolean);
  if (KIND === "views" && files.length !== 3) throw new Error("choose three images: front, left and right");
  if (!files.length) throw new Error(KIND === "scan" ? "choose a scan file" : "choose the frame files of one sequence");
  if (KIND !== "views") {
    const fmts = new Set(files.map((f) => ext(f.name)));
    for (const f of fmts) {
      if (!INFO.formats.includes(f)) throw new Error(files.find((x) => ext(x.name) === f).name +
        ": expected one of " + INFO.formats.map((x) => "." + x).join(" "));
    }
    if (fmts.size > 1) throw new Error("the frames of a sequence must share one format, got " + [...fmts].join(", "));
  }
  if (KIND === "sequence" && files.length > L.max_frames) {
    throw new Error(files.length + " frames exceed the server's limit of " + L.max_frames);
  }
  for (const f of files) {
    if (f.size > L.max_scan_bytes) {
      throw new Error(f.name + ": " + mib(f.size) + " exceeds the server's limit of " + mib(L.max_scan_bytes) + " per file");
    }
  }
  // the page posts JSON to V1: each file in base64 (4 bytes per 3) plus the JSON around it and the prompts,
  // checked against the server's JSON body limit (max_json_bytes), not the binary-extension one
  const body = files.reduce((n, f) => n + 4 * Math.ceil(f.size / 3) + 16, 4096 + $("prompts").value.length * 2);
  if (body > L.max_json_bytes) {
    throw new Error("the request would be about " + mib(body) + " of JSON (the files in base64), over the server's " +
      "limit of " + mib(L.max_json_bytes) + " per request");
  }
  return files;
}

function checkedPrompts() {
  const L = INFO.limits;
  const prompts = $("prompts").value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (prompts.length > L.max_prompts) throw new Error(prompts.length + " prompts exceed the server's limit of " + L.max_prompts);
  for (const p of prompts) {
    if (p.length > L.max_prompt_chars) {
      throw new Error("a prompt of " + p.length + " characters exceeds the server's limit of " + L.max_prompt_chars);
    }
  }
  return prompts;
}

// a new attempt: nothing of an earlier answer stays on screen
function resetResult(text) {
  $("result").classList.add("hidden");
  $("result-empty").classList.remove("hidden");
  $("result-empty").textContent = text;
  clear($("views"));
  $("views-note").textContent = "";
}

async function run() {
  hideError();
  resetResult("Working…");
  let files, prompts;
  try {
    files = checkedFiles();
    prompts = checkedPrompts();
  } catch (e) {
    showError("Not sent: " + e.message);
    resetResult("No result: the request was not sent (see the message under Classify).");
    setStatus("");
    return;
  }
  const btn = $("run");
  btn.disabled = true;
  const t0 = performance.now();
  try {
    setStatus("Reading " + files.length + " file(s)…");
    const data = await Promise.all(files.map(b64));
    const fmt = ext(files[0].name);
    const instance = KIND === "scan" ? { scan: data[0], format: fmt }
      : KIND === "sequence" ? { sequence: data, format: fmt } : { views: data };
    const parameters = { return_views: true, return_attention: Boolean(INFO.mtgf) };
    if (prompts.length) parameters.prompts = prompts;
    const body = JSON.stringify({ instances: [instance], parameters });
    setStatus("Sending " + mib(body.length) + (KIND === "views" ? "; classifying…" : "; the server renders and classifies…"));
    const resp = await fetch("../" + INFO.v1_predict, {
      method: "POST", headers: { "Content-Type": "application/json" }, body, credentials: "same-origin",
    });
    const text = await resp.text();
    let answer = null;
    try { answer = JSON.parse(text); } catch (e) { answer = null; }
    if (!resp.ok) {
      const msg = answer && typeof answer.error === "string" ? answer.error : text;
      showError("HTTP " + resp.status + ": " + msg);
      resetResult("No result: the server refused the request (its message is under Classify).");
      setStatus("");
      return;
    }
    showResult(answer, prompts, files.length);
    setStatus("Done in " + ((performance.now() - t0) / 1000).toFixed(2) + " s (" + files.length + " file(s)).");
  } catch (e) {
    showError("Request failed: " + e.message);
    resetResult("No result: the request failed.");
    setStatus("");
  } finally {
    btn.disabled = false;
  }
}

// -- output --------------------------------------------------------------------------------------
function barChart(box, scores, id) {
  clear(box);
  const entries = Object.entries(scores).sort((a, b) => b[1] - a[1]);
  const rowH = 22, labelW = 200, barW = 330, valW = 80, w = labelW + barW + valW, top = 16;
  const h = top + entries.length * rowH + 4;
  const s = svg("svg", { viewBox: "0 0 " + w + " " + h, id: id, role: "img" });
  const chance = 1 / entries.length;
  entries.forEach(([name, p], i) => {
    const y = top + i * rowH;
    const g = svg("g", { class: "prob", "data-label": name, "data-value": p });
    const shown = name.length > 30 ? name.slice(0, 29) + "…" : name;
    g.append(svg("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, shown));
    g.append(svg("rect", { x: labelW, y: y + 3, width: barW, height: rowH - 6, fill: "#eef1f5", rx: 3 }));
    g.append(svg("rect", {
      x: labelW, y: y + 3, width: Math.max(0, Math.min(1, p)) * barW, height: rowH - 6, rx: 3,
      fill: i === 0 ? "#e2573b" : "#2f6fde",
    }));
    g.append(svg("text", { x: labelW + barW + 8, y: y + 15, class: "value" }, pct(p)));
    s.append(g);
  });
  const cx = labelW + chance * barW;
  s.append(svg("line", { x1: cx, x2: cx, y1: top - 2, y2: h - 2, class: "chance" }));
  s.append(svg("text", { x: cx, y: 11, "text-anchor": "middle", class: "chance-label" },
    "chance 1/" + entries.length));
  box.append(s);
}

// inferno-like colour map: value in [0, 1] → [r, g, b]
const STOPS = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
function colour(v) {
  const x = Math.max(0, Math.min(1, v)) * (STOPS.length - 1), i = Math.min(STOPS.length - 2, Math.floor(x)), f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
}

function drawAttention(canvas, img, heat, lo, hi) {
  const S = 224;
  canvas.width = S; canvas.height = S;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(img, 0, 0, S, S);
  const g = heat.length;
  const small = document.createElement("canvas");
  small.width = g; small.height = g;
  const sctx = small.getContext("2d");
  const im = sctx.createImageData(g, g);
  for (let y = 0; y < g; y++) {
    for (let x = 0; x < g; x++) {
      const [r, gg, b] = colour((Number(heat[y][x]) - lo) / Math.max(hi - lo, 1e-9));
      const o = 4 * (y * g + x);
      im.data[o] = r; im.data[o + 1] = gg; im.data[o + 2] = b; im.data[o + 3] = 255;
    }
  }
  sctx.putImageData(im, 0, 0);
  ctx.globalAlpha = 0.55;
  ctx.drawImage(small, 0, 0, S, S);
  ctx.globalAlpha = 1;
}

function legend() {
  const c = el("canvas", { width: 120, height: 10 });
  const ctx = c.getContext("2d");
  for (let x = 0; x < 120; x++) {
    const [r, g, b] = colour(x / 119);
    ctx.fillStyle = "rgb(" + r + "," + g + "," + b + ")";
    ctx.fillRect(x, 0, 1, 10);
  }
  return el("div", { class: "legend" }, "MTGF attention, one scale for all views: lowest", c, "highest");
}

function showViews(pred, nFiles) {
  const box = clear($("views"));
  const views = Array.isArray(pred.views) ? pred.views : [];
  const att = pred.attention || null;
  const names = att && Array.isArray(att.views) ? att.views : INFO.views;
  $("views-note").textContent = KIND === "sequence"
    ? "— dynamic images rank-pooled over " + nFiles + " frames, as rendered by the server"
    : KIND === "scan" ? "— the server's rendering of the scan" : "— your images at the model's input size";
  // one colour scale for the three maps: the smallest to the largest weight over all views
  const all = att && Array.isArray(att.heatmaps) ? att.heatmaps.flat(2).map(Number) : [0, 1];
  const lo = Math.min(...all), hi = Math.max(...all);
  views.forEach((png, v) => {
    const img = el("img", { class: "view", alt: (names[v] || "view " + v) + " view", src: "data:image/png;base64," + png });
    const pair = el("div", { class: "pair" }, img);
    let caption = names[v] || "view " + v;
    if (att && Array.isArray(att.heatmaps) && att.heatmaps[v]) {
      const canvas = el("canvas", { class: "attention", "data-view": names[v] || v, title: "MTGF attention" });
      pair.append(canvas);
      const heat = att.heatmaps[v];
      if (img.complete && img.naturalWidth) drawAttention(canvas, img, heat, lo, hi);
      else img.addEventListener("load", () => drawAttention(canvas, img, heat, lo, hi), { once: true });
      caption += " · MTGF attention share " + pct(Number(att.per_view_share[v]));
    }
    box.append(el("div", { class: "view-cell" }, pair, el("div", { class: "caption" }, caption)));
  });
  if (att) box.append(legend());
  else if (!INFO.mtgf) box.append(el("p", { class: "muted" }, "This model has no MTGF stage: no attention to show."));
}

function showResult(answer, prompts, nFiles) {
  const pred = answer.predictions[0];
  $("result-empty").classList.add("hidden");
  $("result").classList.remove("hidden");
  $("label").textContent = pred.label;
  $("label-prob").textContent = "(" + pct(pred.probabilities[pred.label]) + ")";
  barChart($("probs"), pred.probabilities, "prob-chart");
  const hasPrompts = prompts.length && pred.prompt_scores;
  $("prompt-block").classList.toggle("hidden", !hasPrompts);
  if (hasPrompts) barChart($("prompt-scores"), pred.prompt_scores, "prompt-chart");
  showViews(pred, nFiles);
}

async function start() {
  for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => selectKind(t.dataset.kind));
  $("run").addEventListener("click", run);
  $("run").disabled = true;
  try {
    const resp = await fetch("model.json", { credentials: "same-origin" });
    const info = await resp.json();
    if (!resp.ok) throw new Error("HTTP " + resp.status + ": " + (info.error || ""));
    showInfo(info);
    $("run").disabled = false;
    document.body.dataset.ready = "1";
  } catch (e) {
    showError("Could not read the model's metadata (model.json): " + e.message);
  }
}

document.addEventListener("DOMContentLoaded", start);

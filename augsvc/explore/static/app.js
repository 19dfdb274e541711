// augsvc explore: the page's script. Plain JavaScript, no framework, nothing loaded from elsewhere.
// It sends the form to the JSON API of `augsvc explore` and draws what comes back. A run that a
// later one overtook is dropped when it answers, so the page always shows the latest inputs;
// <body data-pending> counts runs scheduled or in flight (0: the page is settled).
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const DEBOUNCE_MS = 600;
const $ = (id) => document.getElementById(id);

const state = {config: null, samples: [], datasets: null, upload: null, presets: {},
               runs: {image: 0, text: 0}, timers: {}};

// which element shows an error of each API field, by view
const ERROR_IDS = {
  image: {spec: "spec-error", image: "image-error", targets: "targets-error", seed: "seed-error",
          n: "n-error", run: "run-error"},
  text: {spec: "text-spec-error", texts: "texts-error", filter: "filter-error",
         seed: "text-seed-error", n: "text-n-error", run: "text-run-error"},
};
const INPUT_IDS = {image: {spec: "spec", targets: "targets", seed: "seed", n: "n"},
                   text: {spec: "text-spec", texts: "texts", seed: "text-seed", n: "text-n",
                          filter: "threshold"}};

function pending(delta) {
  const body = document.body;
  body.dataset.pending = String(Number(body.dataset.pending) + delta);
}

async function api(method, path, body, type) {
  const headers = {};
  if (TOKEN) headers["X-Augsvc-Token"] = TOKEN;
  if (body !== undefined) headers["Content-Type"] = type || "application/json";
  pending(1);
  try {
    const response = await fetch(path, {
      method, headers,
      body: body === undefined ? undefined : (type ? body : JSON.stringify(body)),
    });
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch (e) {
      return {error: {field: "run", message: `HTTP ${response.status}: ${text.slice(0, 300)}`}};
    }
  } catch (e) {
    return {error: {field: "run", message: `the request failed: ${e.message}`}};
  } finally {
    pending(-1);
  }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

// ---- errors next to their fields ----

function clearErrors(view) {
  for (const id of Object.values(ERROR_IDS[view])) {
    const box = $(id);
    box.hidden = true;
    box.textContent = "";
  }
  for (const id of Object.values(INPUT_IDS[view])) $(id).classList.remove("invalid");
}

function showError(view, error) {
  const field = ERROR_IDS[view][error.field] ? error.field : "run";
  const box = $(ERROR_IDS[view][field]);
  box.textContent = error.message;
  if (error.code) box.textContent += ` (server: ${error.code})`;
  box.dataset.type = error.type || "";
  box.dataset.path = error.path || "";
  box.dataset.specField = error.spec_field || "";
  box.hidden = false;
  const input = INPUT_IDS[view][field];
  if (input) $(input).classList.add("invalid");
}

// ---- shared helpers ----

function number(value) {
  if (typeof value !== "number") return JSON.stringify(value);
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(3)));
}

function describeValue(value) {
  if (Array.isArray(value) && value.length && Array.isArray(value[0])) {
    return `(${value.length}x${value[0].length} matrix)`;  // in full in the image's tooltip
  }
  if (Array.isArray(value)) {
    const shown = value.slice(0, 6).map(describeValue).join(", ");
    return `[${shown}${value.length > 6 ? ", …" : ""}]`;
  }
  if (value && typeof value === "object") {
    if (value.array_shape) return `array ${value.array_shape.join("x")}`;
    const entries = Object.entries(value).map(([key, v]) => `${key}: ${describeValue(v)}`);
    return `{${entries.join(", ")}}`;
  }
  return number(value);
}

function paramsList(params) {
  const list = el("ul", {class: "params"});
  if (!params.length) list.append(el("li", {class: "none", text: "nothing fired"}));
  for (const entry of params) {
    const values = Object.entries(entry.params || {})
      .map(([key, value]) => `${key}=${describeValue(value)}`).join(" ");
    list.append(el("li", {"data-name": entry.name}, el("b", {text: entry.name}),
                      values ? ` ${values}` : ""));
  }
  return list;
}

async function copyText(text, note) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {  // no clipboard API (or no permission): the old way
    const area = $("clipboard");
    area.value = text;
    area.select();
    document.execCommand("copy");
  }
  $(note).hidden = false;
  setTimeout(() => { $(note).hidden = true; }, 1500);
}

function schedule(view, run) {
  if (!state.timers[view]) pending(1);
  clearTimeout(state.timers[view]);
  state.timers[view] = setTimeout(() => {
    state.timers[view] = null;
    pending(-1);
    run();
  }, DEBOUNCE_MS);
}

function runNow(view, run) {
  if (state.timers[view]) {
    clearTimeout(state.timers[view]);
    state.timers[view] = null;
    pending(-1);
  }
  run();
}

function randomSeed() {
  return String(Math.floor(Math.random() * 2 ** 31));
}

// ---- images ----

function imageSource() {
  const kind = $("source-kind").value;
  if (kind === "sample") return {kind, name: $("sample").value};
  if (kind === "dataset") return {kind, name: $("dataset").value, index: $("dataset-index").value};
  return {kind, id: state.upload};
}

function figure(item, caption, cls) {
  return el("figure", {class: cls, "data-index": item.index},
            el("img", {src: item.src, alt: caption, title: caption}),
            el("figcaption", {}, el("span", {class: "caption", text: caption})));
}

function targetNote(item) {
  const parts = [];
  if (item.bboxes !== null && item.bboxes !== undefined) parts.push(`${item.bboxes} boxes`);
  if (item.keypoints !== null && item.keypoints !== undefined) parts.push(`${item.keypoints} keypoints`);
  return parts.length ? ` · ${parts.join(" · ")}` : "";
}

async function runImage() {
  const run = ++state.runs.image;
  const grid = $("grid");
  grid.dataset.state = "loading";
  if ($("source-kind").value === "upload" && !state.upload) {
    clearErrors("image");
    showError("image", {field: "image", message: "choose an image file to upload"});
    grid.dataset.state = "error";
    grid.dataset.runs = String(Number(grid.dataset.runs) + 1);
    return;
  }
  const request = {spec: $("spec").value, seed: $("seed").value, n: $("n").value,
                   source: imageSource(), targets: $("targets").value};
  const reply = await api("POST", "/api/image", request);
  if (run !== state.runs.image) return;  // overtaken by a later run
  clearErrors("image");
  grid.dataset.runs = String(Number(grid.dataset.runs) + 1);
  if (reply.error) {
    showError("image", reply.error);
    grid.dataset.state = "error";
    grid.classList.add("stale");
    return;
  }
  const original = reply.original;
  const source = reply.source.kind === "dataset"
    ? `${reply.source.name}[${reply.source.index}], label ${reply.source.label}`
    : reply.source.kind === "sample" ? reply.source.name : "your file";
  $("original").replaceChildren(figure(original,
    `original: ${source}, ${original.width}x${original.height}${targetNote(original)}`, "original"));
  const figures = reply.images.map((item) => {
    const fig = figure(item, `#${item.index} · ${item.width}x${item.height}${targetNote(item)}`,
                       "sample");
    fig.querySelector("img").title = JSON.stringify(item.params, null, 1);
    fig.querySelector("figcaption").append(paramsList(item.params));
    return fig;
  });
  grid.replaceChildren(...figures);
  grid.classList.remove("stale");
  grid.dataset.seed = reply.seed === null ? "" : reply.seed;
  grid.dataset.n = String(reply.n);
  grid.dataset.state = "done";
  state.imageSpec = reply.spec;
  $("canonical-spec").textContent = JSON.stringify(reply.spec, null, 2);
  const seed = reply.seed === null ? "fresh randomness" : `seed ${reply.seed}`;
  $("image-status").textContent =
    `${reply.images.length} samples (index 0 to ${reply.n - 1}) under ${seed}, in ${reply.elapsed_ms} ms`;
}

function exampleTargets() {
  const sample = state.samples.find((s) => s.name === $("sample").value);
  if (!sample || !sample.targets) return "";
  const lines = Object.entries(sample.targets).map(([key, value]) => `  "${key}": ${JSON.stringify(value)}`);
  return `{\n${lines.join(",\n")}\n}`;
}

async function chooseSourceKind() {
  const kind = $("source-kind").value;
  for (const box of document.querySelectorAll("#view-image .source")) {
    box.hidden = box.dataset.kind !== kind;
  }
  if (kind === "dataset" && state.datasets === null) {
    const reply = await api("GET", "/api/datasets");
    if (reply.error) {
      showError("image", {...reply.error, field: "image"});
      return;
    }
    state.datasets = reply;
    $("dataset").replaceChildren(...reply.map((d) =>
      el("option", {value: d.name, title: d.description, text: `${d.name} (${d.size})`})));
  }
  if (kind === "sample") $("targets").value = exampleTargets();
  else if (kind === "dataset") $("targets").value = "";
  if (kind !== "upload" || state.upload) runNow("image", runImage);
}

async function uploadFile() {
  const file = $("upload").files[0];
  if (!file) return;
  clearErrors("image");
  state.upload = null;
  const limit = state.config.max_upload_bytes;
  if (file.size > limit) {  // the server's own words; sending it all just to hear them is slow
    showError("image", {field: "image", type: "LimitError",
                        message: `upload: the file is ${file.size} bytes, over the limit of ${limit} bytes`});
    return;
  }
  const reply = await api("POST", "/api/upload", file, "application/octet-stream");
  if (reply.error) {
    showError("image", reply.error);
    $("grid").classList.add("stale");
    $("grid").dataset.state = "error";
    $("grid").dataset.runs = String(Number($("grid").dataset.runs) + 1);
    return;
  }
  state.upload = reply.id;
  $("targets").value = "";
  runNow("image", runImage);
}

// ---- text ----

function markFor(segment) {
  const attrs = {"data-op": segment.op, "data-original": segment.original,
                 "data-position": String(segment.position)};
  const history = (segment.history || []).map((h) => `${h.op} of '${h.original}'`).join(", ");
  const earlier = history ? ` (after ${history})` : "";
  if (segment.original === "") {
    return el("mark", {...attrs, class: "ins", title: `inserted by ${segment.op}${earlier}`},
              segment.text);
  }
  if (segment.text === "") {
    return el("del", {...attrs, class: "gone", title: `deleted by ${segment.op}${earlier}`},
              segment.original);
  }
  return el("mark", {...attrs, class: "sub", title: `${segment.op}: was '${segment.original}'${earlier}`},
            segment.text);
}

function variantItem(variant) {
  const line = el("span", {class: "variant-text"});
  if (variant.segments) {
    for (const segment of variant.segments) {
      line.append(segment.op ? markFor(segment) : document.createTextNode(segment.text));
    }
  } else {
    line.append(variant.text);
  }
  const item = el("li", {class: "variant", "data-variant": String(variant.variant),
                         "data-text": variant.text}, line);
  const verdict = variant.similarity;
  if (verdict) {
    const attempts = `${verdict.attempts} attempt${verdict.attempts === 1 ? "" : "s"}`;
    item.append(el("span", {class: verdict.kept ? "similarity kept" : "similarity rejected",
                            "data-score": String(verdict.similarity), "data-kept": String(verdict.kept),
                            text: `similarity ${verdict.similarity} · ${verdict.kept ? "kept" : "rejected, input kept"} · ${attempts}`}));
  }
  if (!variant.segments && variant.ops.some((op) => "position" in op)) {
    item.append(el("code", {class: "ops", text: JSON.stringify(variant.ops)}));
  }
  return item;
}

async function runText() {
  const run = ++state.runs.text;
  const results = $("text-results");
  results.dataset.state = "loading";
  const request = {texts: $("texts").value, spec: $("text-spec").value, seed: $("text-seed").value,
                   n: $("text-n").value,
                   filter: {on: $("semantic-filter").checked, threshold: $("threshold").value}};
  const reply = await api("POST", "/api/text", request);
  if (run !== state.runs.text) return;
  clearErrors("text");
  results.dataset.runs = String(Number(results.dataset.runs) + 1);
  if (reply.error) {
    showError("text", reply.error);
    results.dataset.state = "error";
    results.classList.add("stale");
    return;
  }
  results.replaceChildren(...reply.results.map((result, k) =>
    el("div", {class: "text-result", "data-source": String(k)},
       el("p", {class: "source", text: result.text}),
       el("ol", {class: "variants", start: "0"}, ...result.variants.map(variantItem)))));
  results.classList.remove("stale");
  results.dataset.seed = reply.seed === null ? "" : reply.seed;
  results.dataset.state = "done";
  state.textSpec = reply.spec;
  $("text-canonical-spec").textContent = JSON.stringify(reply.spec, null, 2);
  const seed = reply.seed === null ? "fresh randomness" : `seed ${reply.seed}`;
  $("text-status").textContent =
    `${reply.n} variants of ${reply.results.length} sentences under ${seed}, in ${reply.elapsed_ms} ms`;
}

// ---- presets ----

function presetList(kind, specId, view, run) {
  const box = document.querySelector(`#${kind}-presets .preset-list`);
  const select = $(kind === "image" ? "preset" : "text-preset");
  for (const preset of state.presets[kind]) {
    select.append(el("option", {value: preset.name, text: preset.name}));
    const use = el("button", {type: "button", class: "link", text: "use"});
    use.addEventListener("click", () => {
      $(specId).value = JSON.stringify(preset.spec, null, 2);
      runNow(view, run);
    });
    box.append(el("div", {class: "preset", "data-name": preset.name},
                  el("h3", {}, preset.name, " ", use),
                  el("pre", {text: JSON.stringify(preset.spec, null, 2)})));
  }
  select.addEventListener("change", () => {
    const preset = state.presets[kind].find((p) => p.name === select.value);
    if (!preset) return;
    $(specId).value = JSON.stringify(preset.spec, null, 2);
    select.value = "";
    runNow(view, run);
  });
}

// ---- start ----

function showView(view) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  }
  $("view-image").hidden = view !== "image";
  $("view-text").hidden = view !== "text";
  if (view === "text" && $("text-results").dataset.runs === "0" && !state.runs.text) {
    runNow("text", runText);
  }
}

async function start() {
  const config = await api("GET", "/api/config");
  if (config.error) {
    showError("image", config.error);
    return;
  }
  state.config = config;
  $("backend").textContent = config.backend === "server"
    ? `server ${config.address}` : "library, in this process";
  $("spec").value = config.image_spec;
  $("text-spec").value = config.text_spec;
  $("texts").value = config.texts;
  $("n").max = config.max_n;
  $("text-n").max = config.max_text_n;
  const [samples, presets] = await Promise.all([api("GET", "/api/samples"), api("GET", "/api/presets")]);
  state.samples = samples.error ? [] : samples;
  state.presets = presets.error ? {image: [], text: []} : presets;
  $("sample").replaceChildren(...state.samples.map((s) =>
    el("option", {value: s.name, text: `${s.name} (${s.width}x${s.height})`})));
  $("targets").value = exampleTargets();
  presetList("image", "spec", "image", runImage);
  presetList("text", "text-spec", "text", runText);

  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  $("image-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runNow("image", runImage);
  });
  $("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runNow("text", runText);
  });
  $("source-kind").addEventListener("change", chooseSourceKind);
  $("sample").addEventListener("change", () => {
    $("targets").value = exampleTargets();
    runNow("image", runImage);
  });
  for (const id of ["dataset", "dataset-index", "seed", "n"]) {
    $(id).addEventListener("change", () => runNow("image", runImage));
  }
  for (const id of ["spec", "targets"]) {
    $(id).addEventListener("input", () => schedule("image", runImage));
  }
  $("upload").addEventListener("change", uploadFile);
  $("example-targets").addEventListener("click", () => {
    $("source-kind").value = "sample";
    chooseSourceKind();
  });
  $("reseed").addEventListener("click", () => {
    $("seed").value = randomSeed();
    runNow("image", runImage);
  });
  $("copy-spec").addEventListener("click", () =>
    copyText(JSON.stringify(state.imageSpec ?? $("spec").value, null, 2), "copied"));

  for (const id of ["text-seed", "text-n", "semantic-filter", "threshold"]) {
    $(id).addEventListener("change", () => runNow("text", runText));
  }
  for (const id of ["texts", "text-spec"]) {
    $(id).addEventListener("input", () => schedule("text", runText));
  }
  $("text-reseed").addEventListener("click", () => {
    $("text-seed").value = randomSeed();
    runNow("text", runText);
  });
  $("text-copy-spec").addEventListener("click", () =>
    copyText(JSON.stringify(state.textSpec ?? $("text-spec").value, null, 2), "text-copied"));

  document.body.dataset.ready = "true";
  runNow("image", runImage);
}

start();

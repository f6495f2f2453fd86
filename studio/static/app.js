// The studio page: the state (what the server validates and renders), the forms bound to it, the
// canvas tools, the preview on every edit, and Generate with its progress and result.

import { clearChannel, request, showProblems } from "./api.js";
import { EASINGS, Stage, handles, lineEnd } from "./canvas.js";
import { convertPath, objectCard, round } from "./objects.js";

const $ = (id) => document.getElementById(id);
const page = {
  config: null,
  state: null, // the page state (studio/spec.py PageState)
  ui: [], // per object: {raster: Uint8Array | null, pathTouched: bool}
  selected: 0,
  frame: 0,
  preview: null,
  firstImage: null,
  tool: "path",
  hover: null,
  drag: null,
  previewSeq: 0,
  playing: null,
};
const stage = new Stage($("canvas"));
window.studio = page; // for people poking at it in the console, and for the browser tests

// ---------------------------------------------------------------------------------------------
// state helpers

function setAt(obj, path, value) {
  const keys = path.split(".");
  let at = obj;
  for (const k of keys.slice(0, -1)) at = at[k];
  at[keys[keys.length - 1]] = value;
}

function getAt(obj, path) {
  return path.split(".").reduce((at, k) => (at == null ? at : at[k]), obj);
}

const size = () => [Number(page.state.size[0]) || 64, Number(page.state.size[1]) || 64];
const nFrames = () => Math.max(2, Math.round(Number(page.state.n_frames) || 2));

function newObject(i) {
  const [h, w] = size();
  const n = nFrames();
  const y = h * (0.3 + 0.2 * (i % 3));
  return {
    label: `object ${i + 1}`,
    prompt: "",
    mask: { source: "toy", shape: ["circle", "star", "square", "triangle", "diamond"][i % 5], radius: Math.round(Math.min(h, w) / 9) },
    path: { type: "keyframes", points: [[0, w * 0.2, y], [n - 1, w * 0.8, y]] },
    hop: null,
    scale: 1.0,
  };
}

// ---------------------------------------------------------------------------------------------
// forms

function renderSettings() {
  document.querySelectorAll("#video-settings [data-path]").forEach((el) => {
    const v = getAt(page.state, el.dataset.path);
    el.value = v ?? "";
  });
  $("steps").placeholder = String(page.config.steps);
  const bounds = page.config.bounds;
  for (const id of ["height", "width"]) Object.assign($(id), { step: String(page.config.size_multiple), min: String(page.config.size_multiple), max: String(bounds.max_side) });
  $("n-frames").max = String(bounds.max_frames);
  $("scrubber").max = String(nFrames() - 1);
  $("first-origin").textContent = page.state.first_frame.source === "image" ? `first frame: ${page.state.first_frame.origin}` : "";
  const radio = page.state.first_frame.source === "image" ? (page.state.first_frame.origin.startsWith("clip") ? "clip" : "upload") : "controlnet";
  document.querySelector(`input[name="first-source"][value="${radio}"]`).checked = true;
}

function renderObjects() {
  $("object-list").innerHTML = page.state.objects.map((o, i) => objectCard(o, i, i === page.selected, nFrames())).join("");
  clearChannel("preview"); // the error slots were made again; the next preview fills them
}

function renderAll() {
  stage.setSize(...size());
  renderSettings();
  renderObjects();
  draw();
  schedulePreview();
}

function onInput(event) {
  const el = event.target;
  if (el.dataset.scale !== undefined) {
    const i = Number(el.dataset.scale);
    const card = el.closest(".object");
    const [a, b] = [...card.querySelectorAll(`[data-scale="${i}"]`)].map((x) => Number(x.value));
    page.state.objects[i].scale = a === b ? a : [a, b];
  } else if (el.dataset.path) {
    let value = el.value;
    const type = el.dataset.type;
    if (type === "num" || type === "int") value = el.value === "" ? null : Number(el.value);
    if (type === "int-or-null") value = el.value === "" ? null : Number(el.value);
    setAt(page.state, el.dataset.path, value);
    if (el.dataset.path.includes(".path.")) page.ui[Number(el.dataset.path.split(".")[1])].pathTouched = true;
    if (el.dataset.path.startsWith("size.")) stage.setSize(...size());
    if (el.dataset.path === "n_frames") $("scrubber").max = String(nFrames() - 1);
  } else {
    return;
  }
  showProblems("generate", []); // the last Generate's refusals at the fields are stale once a field changes
  schedulePreview();
}

const CLICKS = ["select", "remove", "drop-key"]; // buttons; the other actions are selects and boxes that change

function onAction(event) {
  const el = event.target.closest("[data-action]");
  if (!el || el.dataset.action === "mask-file") return;
  if (CLICKS.includes(el.dataset.action) !== (event.type === "click")) return;
  const i = Number(el.dataset.i);
  const obj = page.state.objects[i];
  const action = el.dataset.action;
  if (action === "select") page.selected = i;
  if (action === "remove") {
    if (page.state.objects.length === 1) return showProblems("preview", [{ field: "objects", message: "a motion needs at least one object" }]);
    page.state.objects.splice(i, 1);
    page.ui.splice(i, 1);
    page.selected = Math.min(page.selected, page.state.objects.length - 1);
  }
  if (action === "path-type") {
    obj.path = convertPath(obj.path, el.value, page.preview?.objects[i]?.centres, size(), nFrames());
    page.ui[i].pathTouched = true;
  }
  if (action === "line-mode") {
    const p = obj.path;
    if (el.value === "speed") {
      const [dx, dy] = [p.end[0] - p.start[0], p.end[1] - p.start[1]];
      obj.path = { type: "line", start: p.start, speed: round(Math.hypot(dx, dy) / (nFrames() - 1)), direction_deg: round((Math.atan2(dy, dx) * 180) / Math.PI), easing: p.easing };
    } else {
      obj.path = { type: "line", start: p.start, end: lineEnd(p, nFrames()).map(round), easing: p.easing };
    }
  }
  if (action === "drop-key") obj.path.points.splice(Number(el.dataset.k), 1);
  if (action === "hop") obj.hop = el.checked ? { height: Math.round(size()[0] / 6), count: 2 } : null;
  let hint = null;
  if (action === "mask-kind") {
    if (el.value === "toy") obj.mask = { source: "toy", shape: "circle", radius: Math.round(Math.min(...size()) / 9) };
    else if (page.ui[i].upload) obj.mask = { source: "png", upload: page.ui[i].upload, how: page.ui[i].how };
    else {
      page.selected = i;
      setTool("brush");
      hint = { field: `objects.${i}.mask`, message: "paint the mask with the Brush on the canvas, upload a PNG, or Cut out an object of the first frame" };
    }
  }
  renderObjects();
  if (hint) showProblems("upload", [hint]);
  draw();
  schedulePreview();
}

// ---------------------------------------------------------------------------------------------
// preview

let previewTimer = null;
function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(runPreview, 150);
}

async function runPreview() {
  const seq = ++page.previewSeq;
  const { ok, data } = await request("POST", "/api/preview", page.state);
  if (seq !== page.previewSeq) return; // an older answer, overtaken by a newer edit
  if (!ok) {
    showProblems("preview", data.errors);
    $("preview-box").dataset.state = "invalid";
    return;
  }
  page.preview = data;
  $("preview-gif").src = data.gif;
  $("preview-summary").textContent = data.summary;
  $("preview-box").dataset.state = data.errors.length ? "refused" : "ok";
  showProblems("preview", data.errors);
  showProblems("preview", data.warnings, "warning");
  draw();
}

// ---------------------------------------------------------------------------------------------
// canvas tools

function setTool(tool) {
  page.tool = tool;
  document.querySelector(`input[name="tool"][value="${tool}"]`).checked = true;
  const hints = {
    path: "Click: the selected object is here at the scrubbed frame (a keyframe; a line's start on frame 0, its end later; an arc's start on frame 0). Drag a handle to move it.",
    brush: "Paint the selected object's mask; it follows the path from where its centre is on frame 0.",
    erase: "Erase from the selected object's mask.",
    cutout: `Click an object on the first frame to cut it out: ${page.config?.cutout ?? ""}.`,
  };
  $("tool-hint").textContent = hints[tool];
  draw();
}

function draw() {
  if (!page.state) return;
  stage.render({
    state: page.state,
    preview: page.preview,
    frame: page.frame,
    selected: page.selected,
    raster: page.ui[page.selected]?.raster ?? null,
    tool: page.tool,
    firstImage: page.state.first_frame.source === "image" ? page.firstImage : null,
    hover: page.hover,
    brush: Number($("brush-size").value),
  });
}

function paint(x, y, value) {
  const [h, w] = size();
  const ui = page.ui[page.selected];
  if (!ui.raster || ui.raster.length !== h * w) ui.raster = new Uint8Array(h * w);
  const r = Number($("brush-size").value);
  for (let py = Math.max(0, Math.floor(y - r)); py < Math.min(h, Math.ceil(y + r)); py++) {
    for (let px = Math.max(0, Math.floor(x - r)); px < Math.min(w, Math.ceil(x + r)); px++) {
      if ((px + 0.5 - x) ** 2 + (py + 0.5 - y) ** 2 <= r * r) ui.raster[py * w + px] = value;
    }
  }
}

function strokeTo(x, y, value) {
  const [x0, y0] = page.drag.last;
  const steps = Math.max(1, Math.ceil(Math.hypot(x - x0, y - y0) / 0.5));
  for (let s = 1; s <= steps; s++) paint(x0 + ((x - x0) * s) / steps, y0 + ((y - y0) * s) / steps, value);
  page.drag.last = [x, y];
}

function centreOf(raster) {
  const [h, w] = size();
  let [x0, x1, y0, y1] = [w, -1, h, -1];
  for (let i = 0; i < raster.length; i++) {
    if (!raster[i]) continue;
    const [x, y] = [i % w, Math.floor(i / w)];
    [x0, x1, y0, y1] = [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)];
  }
  return x1 < 0 ? null : [(x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2]; // the bounding box's centre: where the renderer centres the sprite
}

// An object that keeps its drawn place: its path starts at the mask's centre, until the path is edited.
function anchorPath(i, centre) {
  const obj = page.state.objects[i];
  if (page.ui[i].pathTouched || !centre) return;
  const p = obj.path;
  if (p.type === "keyframes") p.points[0] = [p.points[0][0], ...centre.map(round)];
  else if (p.type === "line") p.start = centre.map(round);
}

async function uploadRaster(i) {
  const [h, w] = size();
  const c = document.createElement("canvas");
  [c.width, c.height] = [w, h];
  const ctx = c.getContext("2d");
  const image = ctx.createImageData(w, h);
  page.ui[i].raster.forEach((v, k) => image.data.set(v ? [255, 255, 255, 255] : [0, 0, 0, 255], k * 4));
  ctx.putImageData(image, 0, 0);
  const blob = await new Promise((done) => c.toBlob(done, "image/png"));
  await uploadMask(i, `/api/upload/mask?height=${h}&width=${w}&field=objects.${i}.mask`, blob, "drawn");
}

async function uploadMask(i, url, body, how) {
  const { ok, data } = await request("POST", url, body);
  showProblems("upload", ok ? [] : data.errors);
  if (ok) await adoptMask(i, data.upload, how);
  return ok;
}

async function adoptMask(i, upload, how) {
  page.ui[i].upload = upload;
  page.ui[i].how = how;
  page.state.objects[i].mask = { source: "png", upload, how };
  if (how !== "drawn") await loadRaster(i, upload);
  anchorPath(i, centreOf(page.ui[i].raster));
  renderObjects();
  schedulePreview();
}

async function loadRaster(i, upload) {
  const img = new Image();
  img.src = `/api/uploads/objects/${upload}.png`;
  await img.decode();
  const [h, w] = size();
  const c = document.createElement("canvas");
  [c.width, c.height] = [w, h];
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const pixels = ctx.getImageData(0, 0, w, h).data;
  page.ui[i].raster = Uint8Array.from({ length: h * w }, (_, k) => (pixels[k * 4] >= 128 ? 1 : 0));
}

function placeOnPath(x, y) {
  const obj = page.state.objects[page.selected];
  const p = obj.path;
  const n = nFrames();
  const f = page.frame;
  const at = [round(x), round(y)];
  if (p.type === "keyframes") {
    const k = p.points.findIndex((pt) => pt[0] === f);
    if (k >= 0) p.points[k] = [f, ...at];
    else p.points.push([f, ...at]);
    p.points.sort((a, b) => a[0] - b[0]);
  } else if (p.type === "line") {
    if (f === 0) p.start = at;
    else {
      // where the object is at frame f = start + ease(f / (n-1)) * (end - start): solve for the end
      const u = EASINGS[p.easing ?? "linear"](f / (n - 1));
      const end = [p.start[0] + (x - p.start[0]) / u, p.start[1] + (y - p.start[1]) / u].map(round);
      if (p.end) p.end = end;
      else {
        const [dx, dy] = [end[0] - p.start[0], end[1] - p.start[1]];
        [p.speed, p.direction_deg] = [round(Math.hypot(dx, dy) / (n - 1)), round((Math.atan2(dy, dx) * 180) / Math.PI)];
      }
    }
  } else {
    const angle = round((Math.atan2(y - p.center[1], x - p.center[0]) * 180) / Math.PI);
    if (f === 0) {
      p.radius = round(Math.max(1, Math.hypot(x - p.center[0], y - p.center[1])));
      p.start_deg = angle;
    } else {
      p.end_deg = angle <= (p.start_deg ?? 0) ? angle + 360 : angle;
    }
  }
  page.ui[page.selected].pathTouched = true;
}

function moveHandle(hd, x, y) {
  const p = page.state.objects[page.selected].path;
  const at = [round(x), round(y)];
  if (hd.kind === "key") p.points[hd.k] = [p.points[hd.k][0], ...at];
  if (hd.kind === "start") p.start = at;
  if (hd.kind === "end") {
    if (p.end) p.end = at;
    else {
      const [dx, dy] = [x - p.start[0], y - p.start[1]];
      [p.speed, p.direction_deg] = [round(Math.hypot(dx, dy) / (nFrames() - 1)), round((Math.atan2(dy, dx) * 180) / Math.PI)];
    }
  }
  if (hd.kind === "center") p.center = at;
  if (hd.kind === "arc-start") {
    p.radius = round(Math.max(1, Math.hypot(x - p.center[0], y - p.center[1])));
    p.start_deg = round((Math.atan2(y - p.center[1], x - p.center[0]) * 180) / Math.PI);
  }
  page.ui[page.selected].pathTouched = true;
}

async function onPointerDown(event) {
  const [x, y] = stage.toFrame(event);
  const i = page.selected;
  $("canvas").setPointerCapture(event.pointerId);
  if (page.tool === "path") {
    const hd = stage.hit(handles(page.state, i, page.preview), x, y);
    if (hd) page.drag = { handle: hd };
    else {
      placeOnPath(x, y);
      renderObjects();
      schedulePreview();
    }
  } else if (page.tool === "brush" || page.tool === "erase") {
    page.drag = { last: [x, y], value: page.tool === "brush" ? 1 : 0 };
    paint(x, y, page.drag.value);
  } else if (page.tool === "cutout") {
    const image = page.state.first_frame.source === "image" ? page.state.first_frame.upload : null;
    const { ok, data } = await request("POST", "/api/cutout", { image, x, y, field: `objects.${i}.mask` });
    showProblems("upload", ok ? [] : data.errors);
    showProblems("cutout", ok ? data.warnings : [], "warning"); // a speck of the object is kept, but said
    if (ok) {
      page.ui[i].pathTouched = false; // the cut-out stays where it is on frame 0
      await adoptMask(i, data.upload, "cut-out");
    }
  }
  draw();
}

function onPointerMove(event) {
  const [x, y] = stage.toFrame(event);
  page.hover = [x, y];
  if (page.drag?.handle) {
    moveHandle(page.drag.handle, x, y);
    schedulePreview();
  } else if (page.drag?.last) {
    strokeTo(x, y, page.drag.value);
  }
  draw();
}

async function onPointerUp() {
  const drag = page.drag;
  page.drag = null;
  if (drag?.handle) renderObjects();
  if (drag?.last) {
    const i = page.selected;
    const centre = centreOf(page.ui[i].raster);
    if (!centre) return showProblems("upload", [{ field: `objects.${i}.mask`, message: "the base mask is empty (no foreground pixel): draw or choose an object" }]);
    await uploadRaster(i);
  }
  draw();
}

// ---------------------------------------------------------------------------------------------
// first frame, spec files, saved runs

async function setFirstFrame(upload, origin) {
  page.state.first_frame = { source: "image", upload, origin };
  page.firstImage = new Image();
  page.firstImage.src = `/api/uploads/images/${upload}.png`;
  await page.firstImage.decode().catch(() => {});
  renderSettings();
  draw();
  schedulePreview();
}

async function onFirstFile(event) {
  const file = event.target.files[0];
  if (!file) return;
  const [h, w] = size();
  const { ok, data } = await request("POST", `/api/upload/image?height=${h}&width=${w}&field=first_frame`, file);
  showProblems("upload", ok ? [] : data.errors);
  if (ok) await setFirstFrame(data.upload, `${file.name}${data.note ? `, ${data.note}` : ""}`);
  event.target.value = "";
}

async function onClipUse() {
  const clip = $("clip-select").value;
  const frame = Number($("clip-frame").value);
  const { ok, data } = await request("POST", "/api/clip-frame", { clip, frame, size: size() });
  showProblems("upload", ok ? [] : data.errors);
  if (ok) await setFirstFrame(data.upload, `clip ${clip}, frame ${frame}${data.note ? `, ${data.note}` : ""}`);
}

function onFirstSource(event) {
  if (event.target.value === "controlnet") {
    page.state.first_frame = { source: "controlnet" };
    showProblems("upload", []);
    renderSettings();
    draw();
    schedulePreview();
  }
}

async function loadState(state) {
  // the messages of what was on the page before are stale now (an upload's refusal, a run's, a spec's)
  for (const channel of ["upload", "load", "preview", "cutout"]) clearChannel(channel);
  page.state = state;
  page.ui = state.objects.map(() => ({ raster: null, pathTouched: true }));
  page.selected = 0;
  page.frame = 0;
  $("scrubber").value = "0";
  stage.setSize(...size());
  for (const [i, o] of state.objects.entries()) {
    if (o.mask.source === "png") {
      Object.assign(page.ui[i], { upload: o.mask.upload, how: o.mask.how });
      await loadRaster(i, o.mask.upload).catch(() => {});
    }
  }
  if (state.first_frame.source === "image") await setFirstFrame(state.first_frame.upload, state.first_frame.origin);
  renderAll();
}

async function onSpecFiles(event) {
  const files = [...event.target.files];
  event.target.value = "";
  const yamlFile = files.find((f) => /\.ya?ml$/i.test(f.name));
  if (!yamlFile) return showProblems("load", [{ field: "spec", message: "choose a .yaml spec (and the PNG masks it names)" }]);
  const uploaded = {};
  for (const f of files.filter((x) => /\.png$/i.test(x.name))) {
    const { ok, data } = await request("POST", `/api/upload/mask?as_is=1&field=spec`, f);
    if (!ok) return showProblems("load", data.errors.map((e) => ({ field: "spec", message: `${f.name}: ${e.message}` })));
    uploaded[f.name] = data.upload;
  }
  const { ok, data } = await request("POST", "/api/spec/load", { yaml: await yamlFile.text(), files: uploaded, prompt: page.state.prompt });
  // all of a spec's problems are the spec's: said at its field, not at the page's fields of the same name
  showProblems("load", ok ? [] : data.errors.map((e) => ({ field: "spec", message: e.field === "spec" ? e.message : `${e.field}: ${e.message}` })));
  if (ok) await loadState(data);
}

async function refreshRuns(select) {
  const { ok, data } = await request("GET", "/api/runs");
  if (!ok) return;
  $("run-list").innerHTML = data.map((r) => `<option value="${r.run}">${r.run} · ${r.prompt.slice(0, 40).replace(/</g, "&lt;")} · IoU ${r.iou?.toFixed(3) ?? "?"}</option>`).join("");
  if (select) $("run-list").value = select;
}

async function onLoadRun() {
  const run = $("run-list").value;
  if (!run) return;
  const { ok, data } = await request("GET", `/api/runs/${encodeURIComponent(run)}/state`);
  showProblems("load", ok ? [] : data.errors);
  if (ok) await loadState(data);
}

// ---------------------------------------------------------------------------------------------
// generate

// A refusal is said in the Generate box (where the person looks after clicking), each message also at its
// own field; the box goes back to ready.
function refuseGenerate(errors) {
  showProblems("generate", errors.filter((e) => e.field !== "generate" && e.field !== "general"));
  const said = errors.map((e) => ({ field: "generate", message: e.field === "generate" || e.field === "general" ? e.message : `${e.field}: ${e.message}` }));
  showProblems("generate-box", said);
  $("progress-text").textContent = "ready";
  $("generate-box").dataset.state = "refused";
}

async function onGenerate() {
  const t0 = performance.now();
  clearChannel("generate");
  clearChannel("generate-box");
  $("result").hidden = true;
  delete $("result-iou").dataset.iou; // the last result is gone until this one is ready
  $("result-video").removeAttribute("src");
  $("result-video").load();
  $("progress-text").textContent = "starting";
  $("generate-box").dataset.state = "starting";
  $("generate").disabled = true;
  const { ok, data } = await request("POST", "/api/generate", page.state);
  if (!ok) {
    $("generate").disabled = false;
    return refuseGenerate(data.errors);
  }
  $("generate-box").dataset.state = "running";
  $("progress").value = 0;
  page.job = data.job;
  $("cancel").hidden = false;
  showQueue(data.queue);
  await followJob(data.job, t0);
  page.job = null;
  $("cancel").hidden = true;
  $("generate").disabled = false;
  refreshQueue();
}

async function followJob(job, t0) {
  for (;;) {
    await new Promise((done) => setTimeout(done, 300));
    const answer = await request("GET", `/api/jobs/${job}`);
    if (!answer.ok) return refuseGenerate(answer.data.errors);
    const j = answer.data;
    $("progress-text").textContent = j.message;
    $("progress").dataset.state = j.state;
    $("generate-box").dataset.state = j.state;
    if (j.num_chunks) $("progress").value = (j.chunk * j.num_steps + j.step) / (j.num_chunks * j.num_steps);
    if (j.state === "failed") return showProblems("generate-box", [{ field: "generate", message: j.error }]);
    if (j.state === "cancelled") return;
    if (j.state === "done") {
      $("progress").value = 1;
      return showResult(j.result, t0);
    }
    refreshQueue();
  }
}

function showQueue(jobs) {
  $("queue").innerHTML = (jobs || []).map((j) => `<li data-job="${j.id}">${j.position === 0 ? "generating" : `waiting (${j.position} ahead)`}: ${j.run} · ${j.message.replace(/</g, "&lt;")}
    <button type="button" data-cancel="${j.id}">cancel</button></li>`).join("");
}

async function refreshQueue() {
  const { ok, data } = await request("GET", "/api/jobs");
  if (ok) showQueue(data);
}

async function cancelJob(id) {
  const { ok, data } = await request("POST", `/api/jobs/${id}/cancel`);
  showProblems("generate-box", ok ? [] : data.errors);
  if (ok && id === page.job) $("progress-text").textContent = data.message;
  refreshQueue();
}

function showResult(result, t0) {
  const base = `/api/runs/${result.run}/files`;
  const video = $("result-video");
  $("result").hidden = false;
  $("result-timing").textContent = "";
  video.onplaying = () => {
    if (!$("result-timing").textContent) {
      const s = (performance.now() - t0) / 1000;
      $("result-timing").textContent = `playing ${s.toFixed(1)} s after Generate (${result.seconds.generate.toFixed(1)} s generating)`;
    }
  };
  video.src = `${base}/video.mp4`;
  video.play().catch(() => {});
  $("result-gif").src = `${base}/video.gif`;
  $("result-sheet").src = `${base}/sheet.png`;
  const iou = result.iou.toFixed(3);
  $("result-iou").textContent = `IoU against the drawn masks: ${iou} (mean over ${result.n_frames} frames; ${result.segmenter})`;
  $("result-iou").dataset.iou = iou;
  $("result-files").innerHTML = `saved in ${result.run}/ (<a href="${base}/spec.yaml">spec.yaml</a>, <a href="${base}/meta.json">meta.json</a>, <a href="${base}/video.mp4">video.mp4</a>); ${result.mode}, ${result.checkpoint}`;
  refreshRuns(result.run);
}

// ---------------------------------------------------------------------------------------------

function play() {
  if (page.playing) {
    clearInterval(page.playing);
    page.playing = null;
    $("play").textContent = "▶";
    return;
  }
  $("play").textContent = "⏸";
  page.playing = setInterval(() => setFrame((page.frame + 1) % nFrames()), 1000 / (page.config.fps || 8));
}

function setFrame(f) {
  page.frame = f;
  $("scrubber").value = String(f);
  $("frame-label").textContent = `frame ${f} of ${nFrames() - 1}`;
  draw();
}

async function init() {
  const { ok, data } = await request("GET", "/api/config");
  if (!ok) return showProblems("load", data.errors);
  page.config = data;
  const mode = data.deployment ? `queued on ${data.deployment}` : "in this process";
  $("model-info").textContent = data.checkpoint_problem
    ? `no checkpoint: ${data.checkpoint_problem}`
    : `checkpoint ${data.checkpoint} (motion window ${data.window}); videos are generated ${mode}; cut-out: ${data.cutout}`;
  $("clip-select").innerHTML = data.clips.map((c) => `<option>${c}</option>`).join("") || "<option value=''>no ingested clips</option>";
  document.body.addEventListener("input", onInput);
  document.body.addEventListener("change", onAction);
  document.body.addEventListener("click", onAction);
  $("first-file").addEventListener("change", onFirstFile);
  $("clip-use").addEventListener("click", onClipUse);
  document.querySelectorAll('input[name="first-source"]').forEach((r) => r.addEventListener("change", onFirstSource));
  document.querySelectorAll('input[name="tool"]').forEach((r) => r.addEventListener("change", (e) => setTool(e.target.value)));
  $("add-object").addEventListener("click", () => {
    page.state.objects.push(newObject(page.state.objects.length));
    page.ui.push({ raster: null, pathTouched: false });
    page.selected = page.state.objects.length - 1;
    renderObjects();
    schedulePreview();
  });
  $("object-list").addEventListener("change", async (e) => {
    if (e.target.dataset.action !== "mask-file" || !e.target.files[0]) return;
    const i = Number(e.target.dataset.i);
    const [h, w] = size();
    page.ui[i].pathTouched = false;
    await uploadMask(i, `/api/upload/mask?height=${h}&width=${w}&field=objects.${i}.mask`, e.target.files[0], "uploaded");
    e.target.value = "";
  });
  $("scrubber").addEventListener("input", (e) => setFrame(Number(e.target.value)));
  $("play").addEventListener("click", play);
  $("generate").addEventListener("click", onGenerate);
  $("cancel").addEventListener("click", () => page.job && cancelJob(page.job));
  $("queue").addEventListener("click", (e) => e.target.dataset.cancel && cancelJob(e.target.dataset.cancel));
  $("load-run").addEventListener("click", onLoadRun);
  $("spec-file").addEventListener("change", onSpecFiles);
  const canvas = $("canvas");
  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerUp);
  canvas.addEventListener("pointerleave", () => { page.hover = null; draw(); });
  setTool("path");
  await loadState(data.default_state);
  page.ui.forEach((u) => (u.pathTouched = false));
  setFrame(0);
  refreshRuns();
  refreshQueue();
  document.body.dataset.ready = "1";
}

init();

// One object's card: its mask, path, hop and scale as form fields. Every field that is a spec key
// carries data-path (its place in the page state) and an error slot (data-field) under it, so the
// spec's messages land where they belong.

import { COLOURS } from "./canvas.js";

const SHAPES = ["circle", "square", "triangle", "star", "diamond"];
const EASINGS = ["linear", "ease_in", "ease_out", "ease_in_out"];

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (path, value, label, extra = "") =>
  `<label>${label} <input type="number" step="any" data-path="${path}" data-type="num" value="${esc(round(value))}" ${extra}></label>`;
const select = (path, options, value, extra = "") =>
  `<select data-path="${path}" ${extra}>${options.map((o) => `<option value="${o}" ${o === value ? "selected" : ""}>${o.replaceAll("_", " ")}</option>`).join("")}</select>`;
const err = (field) => `<div class="err" data-field="${field}"></div>`;

export function round(v) {
  return typeof v === "number" ? Math.round(v * 100) / 100 : v;
}

const MASK_SAID = { drawn: "drawn with the brush", uploaded: "an uploaded PNG", "cut-out": "cut out of the first frame", loaded: "from a spec" };

function maskSection(obj, i) {
  const m = obj.mask;
  const kind = m.source === "toy" ? "toy" : "png";
  let body;
  if (m.source === "toy") {
    body = `${select(`objects.${i}.mask.shape`, SHAPES, m.shape)} ${num(`objects.${i}.mask.radius`, m.radius, "radius")}`;
  } else {
    body = `<span class="hint" data-testid="mask-how">${esc(MASK_SAID[m.how] || m.how)}</span>`;
  }
  return `<div class="section"><b>Mask</b>
    <select data-action="mask-kind" data-i="${i}"><option value="toy" ${kind === "toy" ? "selected" : ""}>toy shape</option>
      <option value="png" ${kind === "png" ? "selected" : ""}>PNG (brush, upload, cut-out)</option></select>
    ${body}
    <label>upload PNG <input type="file" accept="image/png,image/*" data-action="mask-file" data-i="${i}"></label>
    ${err(`objects.${i}.mask`)}${err(`objects.${i}.radius`)}</div>`;
}

function pathSection(obj, i, nFrames) {
  const p = obj.path;
  const at = `objects.${i}.path`;
  let body = "";
  if (p.type === "line") {
    const mode = p.end ? "end" : "speed";
    body = `${num(`${at}.start.0`, p.start[0], "start x")}${num(`${at}.start.1`, p.start[1], "y")}
      <select data-action="line-mode" data-i="${i}"><option value="end" ${mode === "end" ? "selected" : ""}>to an end</option>
        <option value="speed" ${mode === "speed" ? "selected" : ""}>at a speed</option></select>
      ${mode === "end" ? num(`${at}.end.0`, p.end[0], "end x") + num(`${at}.end.1`, p.end[1], "y")
        : num(`${at}.speed`, p.speed, "px/frame") + num(`${at}.direction_deg`, p.direction_deg ?? 0, "direction°")}`;
  } else if (p.type === "keyframes") {
    const rows = p.points.map((pt, k) => `<tr>
        <td><input type="number" step="1" data-path="${at}.points.${k}.0" data-type="num" value="${round(pt[0])}" aria-label="frame"></td>
        <td><input type="number" step="any" data-path="${at}.points.${k}.1" data-type="num" value="${round(pt[1])}" aria-label="x"></td>
        <td><input type="number" step="any" data-path="${at}.points.${k}.2" data-type="num" value="${round(pt[2])}" aria-label="y"></td>
        <td><button type="button" data-action="drop-key" data-i="${i}" data-k="${k}" ${p.points.length <= 2 ? "disabled" : ""}>×</button></td></tr>`);
    body = `<table class="keyframes" data-testid="keyframes-${i}"><tr><th>frame</th><th>x</th><th>y</th><th></th></tr>${rows.join("")}</table>
      <span class="hint">click the canvas (Path tool) to put a keyframe at the scrubbed frame; drag one to move it</span>`;
  } else {
    body = `${num(`${at}.center.0`, p.center[0], "centre x")}${num(`${at}.center.1`, p.center[1], "y")}
      ${num(`${at}.radius`, p.radius, "radius")}${num(`${at}.start_deg`, p.start_deg ?? 0, "from°")}${num(`${at}.end_deg`, p.end_deg ?? 360, "to°")}`;
  }
  return `<div class="section"><b>Path</b>
    <select data-action="path-type" data-i="${i}">${["line", "keyframes", "arc"].map((t) => `<option ${t === p.type ? "selected" : ""}>${t}</option>`).join("")}</select>
    easing ${select(`${at}.easing`, EASINGS, p.easing ?? "linear")}
    <div>${body}</div>${err(at)}</div>`;
}

function hopScaleSection(obj, i) {
  const hop = obj.hop;
  const scale = Array.isArray(obj.scale) ? obj.scale : [obj.scale ?? 1, obj.scale ?? 1];
  return `<div class="section"><b>Hops</b>
      <label><input type="checkbox" data-action="hop" data-i="${i}" ${hop ? "checked" : ""}> hop</label>
      ${hop ? num(`objects.${i}.hop.height`, hop.height, "height") + num(`objects.${i}.hop.count`, hop.count, "count") : ""}
      ${err(`objects.${i}.hop`)}</div>
    <div class="section"><b>Scale</b>
      ${num(`objects.${i}.scale.0`, scale[0], "first frame", `data-scale="${i}"`)}${num(`objects.${i}.scale.1`, scale[1], "last", `data-scale="${i}"`)}
      ${err(`objects.${i}.scale`)}</div>`;
}

export function objectCard(obj, i, selected, nFrames) {
  return `<div class="object ${selected ? "selected" : ""}" data-i="${i}" style="--c: ${COLOURS[i % COLOURS.length]}" data-testid="object-${i}">
    <h3><input type="text" data-path="objects.${i}.label" value="${esc(obj.label)}" aria-label="object name">
      <button type="button" data-action="select" data-i="${i}">${selected ? "selected" : "select"}</button>
      <button type="button" data-action="remove" data-i="${i}" title="remove this object">remove</button></h3>
    <label class="wide">its own prompt <input type="text" data-path="objects.${i}.prompt" value="${esc(obj.prompt)}"
      placeholder="optional: its words act inside its mask, the video's prompt elsewhere" data-testid="object-prompt-${i}"></label>
    ${err(`objects.${i}.prompt`)}
    ${maskSection(obj, i)}${pathSection(obj, i, nFrames)}${hopScaleSection(obj, i)}
    ${err(`objects.${i}`)}</div>`;
}

// A new path of another type, through the same first and last positions.
export function convertPath(path, type, centres, size, nFrames) {
  const [h, w] = size;
  const first = centres?.[0] ?? [w / 2, h / 2];
  const last = centres?.[centres.length - 1] ?? first;
  const easing = path.easing ?? "linear";
  if (type === "keyframes") return { type, points: [[0, ...first], [nFrames - 1, ...last]], easing };
  if (type === "line") return { type, start: first, end: last, easing };
  return { type: "arc", center: [w / 2, h / 2], radius: Math.round(Math.min(h, w) / 4), start_deg: 180, end_deg: 360, easing };
}

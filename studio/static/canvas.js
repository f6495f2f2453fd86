// The canvas: the first frame, every object's mask at the scrubbed frame, their paths, and the
// selected object's handles. Coordinates are the spec's: pixels of the video, x right, y down.

export const COLOURS = ["rgb(255,90,90)", "rgb(255,210,63)", "rgb(63,167,255)", "rgb(155,93,229)", "rgb(0,245,212)", "rgb(241,91,181)"];
const RGB = [[255, 90, 90], [255, 210, 63], [63, 167, 255], [155, 93, 229], [0, 245, 212], [241, 91, 181]];
const HANDLE_PX = 9; // how near (screen pixels) a press must be to grab a handle

export const EASINGS = {
  linear: (u) => u,
  ease_in: (u) => u * u,
  ease_out: (u) => 1 - (1 - u) ** 2,
  ease_in_out: (u) => 0.5 - 0.5 * Math.cos(Math.PI * u),
};

// One frame of packed bits (np.packbits, row-major) -> Uint8Array of 0/1, h*w long.
export function unpackBits(b64, n) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
  return out;
}

export class Stage {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.offscreen = document.createElement("canvas");
    this.size = [64, 64];
    this.scale = 7;
    this.cache = new Map(); // b64 -> bits
  }

  setSize(h, w) {
    this.size = [h, w];
    this.scale = Math.max(1, Math.floor(448 / Math.max(h, w)));
    this.canvas.width = w * this.scale;
    this.canvas.height = h * this.scale;
    this.canvas.style.width = `${Math.min(448, w * this.scale)}px`;
    this.offscreen.width = w;
    this.offscreen.height = h;
  }

  // a pointer event -> video pixel coordinates (floats)
  toFrame(event) {
    const r = this.canvas.getBoundingClientRect();
    return [((event.clientX - r.left) / r.width) * this.size[1], ((event.clientY - r.top) / r.height) * this.size[0]];
  }

  // screen pixels per video pixel
  get zoom() {
    return this.canvas.getBoundingClientRect().width / this.size[1];
  }

  bits(b64) {
    if (!this.cache.has(b64)) {
      if (this.cache.size > 2000) this.cache.clear();
      this.cache.set(b64, unpackBits(b64, this.size[0] * this.size[1]));
    }
    return this.cache.get(b64);
  }

  paintMask(bits, rgb, alpha) {
    const [h, w] = this.size;
    const octx = this.offscreen.getContext("2d");
    const image = octx.createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      if (!bits[i]) continue;
      image.data.set([rgb[0], rgb[1], rgb[2], alpha], i * 4);
    }
    octx.putImageData(image, 0, 0);
    this.ctx.drawImage(this.offscreen, 0, 0, w * this.scale, h * this.scale);
  }

  // view: {state, preview, frame, selected, raster (Uint8Array | null), tool, firstImage, hover, brush}
  render(view) {
    const { ctx, scale } = this;
    const [h, w] = this.size;
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#303030";
    ctx.fillRect(0, 0, w * scale, h * scale);
    if (view.firstImage && view.firstImage.complete && view.firstImage.naturalWidth) {
      ctx.drawImage(view.firstImage, 0, 0, w * scale, h * scale);
    }
    const drawing = (view.tool === "brush" || view.tool === "erase") && view.raster;
    view.preview?.objects.forEach((obj, i) => {
      if (drawing && i === view.selected) return;
      const frame = obj.masks[Math.min(view.frame, obj.masks.length - 1)];
      if (frame) this.paintMask(this.bits(frame), RGB[i % RGB.length], 150);
    });
    if (drawing) this.paintMask(view.raster, [255, 255, 255], 190);
    view.preview?.objects.forEach((obj, i) => this.drawPath(obj.centres, i, view.frame, i === view.selected));
    if (view.state.objects[view.selected]) this.drawHandles(handles(view.state, view.selected, view.preview));
    if (drawing && view.hover) {
      ctx.strokeStyle = "#fff";
      ctx.beginPath();
      ctx.arc(view.hover[0] * scale, view.hover[1] * scale, view.brush * scale, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  drawPath(centres, i, frame, selected) {
    const { ctx, scale } = this;
    if (!centres?.length) return;
    ctx.strokeStyle = COLOURS[i % COLOURS.length];
    ctx.lineWidth = selected ? 2 : 1;
    ctx.setLineDash(selected ? [] : [4, 3]);
    ctx.beginPath();
    centres.forEach(([x, y], f) => (f ? ctx.lineTo(x * scale, y * scale) : ctx.moveTo(x * scale, y * scale)));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = COLOURS[i % COLOURS.length];
    for (const [x, y] of centres) ctx.fillRect(x * scale - 1.5, y * scale - 1.5, 3, 3);
    const now = centres[Math.min(frame, centres.length - 1)];
    ctx.beginPath();
    ctx.arc(now[0] * scale, now[1] * scale, 5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }

  drawHandles(list) {
    const { ctx, scale } = this;
    ctx.font = "11px system-ui, sans-serif";
    for (const hd of list) {
      const x = hd.x * scale;
      const y = hd.y * scale;
      ctx.fillStyle = "#fff";
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 1;
      if (hd.kind === "center") {
        ctx.beginPath();
        ctx.moveTo(x - 6, y); ctx.lineTo(x + 6, y); ctx.moveTo(x, y - 6); ctx.lineTo(x, y + 6);
        ctx.strokeStyle = "#fff";
        ctx.lineWidth = 2;
        ctx.stroke();
      } else {
        ctx.fillRect(x - 4, y - 4, 8, 8);
        ctx.strokeRect(x - 4, y - 4, 8, 8);
      }
      if (hd.label !== undefined) {
        ctx.fillStyle = "#fff";
        ctx.fillText(hd.label, x + 6, y - 6);
      }
    }
  }

  // the handle under a pointer (video coordinates), or null
  hit(list, x, y) {
    const reach = HANDLE_PX / this.zoom;
    let best = null;
    let bestD = reach;
    for (const hd of list) {
      const d = Math.hypot(hd.x - x, hd.y - y);
      if (d <= bestD) [best, bestD] = [hd, d];
    }
    return best;
  }
}

// The selected object's handles: keyframes, a line's start and end, an arc's centre.
export function handles(state, i, preview) {
  const obj = state.objects[i];
  const p = obj.path;
  const n = state.n_frames;
  if (p.type === "keyframes") return p.points.map(([f, x, y], k) => ({ kind: "key", k, x, y, label: `f${f}` }));
  if (p.type === "line") {
    const end = p.end ?? lineEnd(p, n);
    return [{ kind: "start", x: p.start[0], y: p.start[1], label: "start" }, { kind: "end", x: end[0], y: end[1], label: "end" }];
  }
  const out = [{ kind: "center", x: p.center[0], y: p.center[1] }];
  const c = preview?.objects[i]?.centres;
  if (c?.length) out.push({ kind: "arc-start", x: c[0][0], y: c[0][1], label: "start" });
  return out;
}

export function lineEnd(p, n) {
  const rad = ((p.direction_deg ?? 0) * Math.PI) / 180;
  const d = (p.speed ?? 0) * (n - 1);
  return [p.start[0] + d * Math.cos(rad), p.start[1] + d * Math.sin(rad)];
}

// The frame viewer: window/level, coloured label layers, zoom and pan, brush, eraser and pick.

const ZOOM_STEP = 1.15;

/** Colour lookup tables of one layer: per label id, RGB and alpha (0 where hidden). */
function layerTables(layer) {
  const tables = { r: new Float32Array(256), g: new Float32Array(256), b: new Float32Array(256), a: new Float32Array(256) };
  for (const [id, colour] of Object.entries(layer.colours)) {
    const label = Number(id);
    if (!label || (layer.hidden && layer.hidden.has(label))) continue;
    [tables.r[label], tables.g[label], tables.b[label]] = colour;
    tables.a[label] = layer.opacity;
  }
  return tables;
}

export class Viewer {
  /** `handlers`: strokeStart() -> {labels, label, erase} | null, stroke(mask, op), pick(x, y), status(text). */
  constructor(canvas, handlers) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.handlers = handlers;
    this.width = 0; this.height = 0;
    this.grey = null;
    this.level = 0.5; this.window = 1.0;
    this.layers = [];
    this.tool = "pan";
    this.brushSize = 5;
    this.scale = 1; this.offsetX = 0; this.offsetY = 0;
    this.pointer = null;
    this.drag = null;
    this.buffer = document.createElement("canvas");
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.bindPointer();
  }

  setFrameSize(width, height) {
    const changed = width !== this.width || height !== this.height;
    this.width = width; this.height = height;
    this.buffer.width = width; this.buffer.height = height;
    this.image = this.buffer.getContext("2d").createImageData(width, height);
    if (changed) this.fit();
  }

  setImage(grey) { this.grey = grey; this.render(); }
  setWindow(level, window) { this.level = level; this.window = Math.max(0.01, window); this.render(); }
  setLayers(layers) { this.layers = layers; this.render(); }
  setTool(tool) { this.tool = tool; this.canvas.dataset.tool = tool; this.render(); }
  setBrushSize(size) { this.brushSize = size; this.render(); }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const box = this.canvas.parentElement.getBoundingClientRect();
    this.canvas.width = Math.max(1, Math.round(box.width * ratio));
    this.canvas.height = Math.max(1, Math.round(box.height * ratio));
    this.fit();
  }

  fit() {
    if (!this.width) { this.render(); return; }
    this.scale = Math.min(this.canvas.width / this.width, this.canvas.height / this.height);
    this.offsetX = (this.canvas.width - this.width * this.scale) / 2;
    this.offsetY = (this.canvas.height - this.height * this.scale) / 2;
    this.render();
  }

  /** Image coordinates (float pixels) of a pointer event. */
  imagePoint(event) {
    const ratio = this.canvas.width / this.canvas.getBoundingClientRect().width;
    const box = this.canvas.getBoundingClientRect();
    return { x: ((event.clientX - box.left) * ratio - this.offsetX) / this.scale,
             y: ((event.clientY - box.top) * ratio - this.offsetY) / this.scale };
  }

  compose() {
    const pixels = this.image.data;
    const low = this.level - this.window / 2;
    const lut = new Uint8ClampedArray(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.round(Math.min(1, Math.max(0, (v / 255 - low) / this.window)) * 255);
    const tables = this.layers.filter((layer) => layer.labels).map((layer) => [layer.labels, layerTables(layer)]);
    const grey = this.grey;
    for (let i = 0, p = 0; i < grey.length; i++, p += 4) {
      let r = lut[grey[i]], g = r, b = r;
      for (const [labels, t] of tables) {
        const k = labels[i];
        if (k) {
          const a = t.a[k];
          if (a) { r += (t.r[k] - r) * a; g += (t.g[k] - g) * a; b += (t.b[k] - b) * a; }
        }
      }
      pixels[p] = r; pixels[p + 1] = g; pixels[p + 2] = b; pixels[p + 3] = 255;
    }
    this.buffer.getContext("2d").putImageData(this.image, 0, 0);
  }

  render() {
    const context = this.context;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#0b0d10";
    context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.grey || this.grey.length !== this.width * this.height) return;
    this.compose();
    context.imageSmoothingEnabled = false;
    context.setTransform(this.scale, 0, 0, this.scale, this.offsetX, this.offsetY);
    context.drawImage(this.buffer, 0, 0);
    context.setTransform(1, 0, 0, 1, 0, 0);
    this.drawCursor();
  }

  drawCursor() {
    if (!this.pointer || (this.tool !== "brush" && this.tool !== "eraser")) return;
    const context = this.context;
    const radius = Math.max(0.5, this.brushSize / 2) * this.scale;
    const x = (Math.floor(this.pointer.x) + 0.5) * this.scale + this.offsetX;
    const y = (Math.floor(this.pointer.y) + 0.5) * this.scale + this.offsetY;
    context.beginPath();
    context.arc(x, y, radius, 0, 2 * Math.PI);
    context.strokeStyle = this.tool === "eraser" ? "#ffb0b0" : "#ffffff";
    context.lineWidth = 1.5;
    context.stroke();
  }

  bindPointer() {
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => this.pointerDown(event));
    canvas.addEventListener("pointermove", (event) => this.pointerMove(event));
    canvas.addEventListener("pointerup", (event) => this.pointerUp(event));
    canvas.addEventListener("pointerleave", () => { this.pointer = null; this.render(); });
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    canvas.addEventListener("wheel", (event) => this.zoom(event), { passive: false });
  }

  pointerDown(event) {
    if (!this.grey) return;
    capturePointer(this.canvas, event);
    const point = this.imagePoint(event);
    if (this.tool === "pan" || event.button === 1 || event.button === 2 || event.altKey) {
      this.drag = { kind: "pan", x: event.clientX, y: event.clientY };
      return;
    }
    if (event.button !== 0) return;
    const x = Math.floor(point.x), y = Math.floor(point.y);
    if (this.tool === "pick") {
      if (x >= 0 && y >= 0 && x < this.width && y < this.height) this.handlers.pick(x, y);
      return;
    }
    const target = this.handlers.strokeStart();
    if (!target) return;
    this.drag = { kind: "stroke", target, mask: new Uint8Array(this.width * this.height), last: point };
    this.stamp(point);
    this.render();
  }

  pointerMove(event) {
    this.pointer = this.imagePoint(event);
    if (this.drag && this.drag.kind === "pan") {
      const ratio = this.canvas.width / this.canvas.getBoundingClientRect().width;
      this.offsetX += (event.clientX - this.drag.x) * ratio;
      this.offsetY += (event.clientY - this.drag.y) * ratio;
      this.drag.x = event.clientX; this.drag.y = event.clientY;
    } else if (this.drag && this.drag.kind === "stroke") {
      const from = this.drag.last, to = this.pointer;
      const steps = Math.max(1, Math.ceil(Math.hypot(to.x - from.x, to.y - from.y) / Math.max(0.5, this.brushSize / 4)));
      for (let s = 1; s <= steps; s++) this.stamp({ x: from.x + (to.x - from.x) * s / steps, y: from.y + (to.y - from.y) * s / steps });
      this.drag.last = to;
    }
    this.render();
  }

  pointerUp() {
    const drag = this.drag;
    this.drag = null;
    if (drag && drag.kind === "stroke") this.handlers.stroke(drag.mask, drag.target.erase ? "erase" : "paint");
  }

  /** Mark the disc under `point` in the stroke mask and preview it on the target labels. */
  stamp(point) {
    const { mask, target } = this.drag;
    const radius = Math.max(0.5, this.brushSize / 2);
    const cx = Math.floor(point.x), cy = Math.floor(point.y);
    const reach = Math.floor(radius);
    for (let y = Math.max(0, cy - reach); y <= Math.min(this.height - 1, cy + reach); y++) {
      for (let x = Math.max(0, cx - reach); x <= Math.min(this.width - 1, cx + reach); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 > radius * radius) continue;
        const i = y * this.width + x;
        mask[i] = 1;
        if (!target.erase) target.labels[i] = target.label;
        else if (target.label === 0 || target.labels[i] === target.label) target.labels[i] = 0;
      }
    }
  }

  zoom(event) {
    if (!this.grey) return;
    event.preventDefault();
    const ratio = this.canvas.width / this.canvas.getBoundingClientRect().width;
    const box = this.canvas.getBoundingClientRect();
    const sx = (event.clientX - box.left) * ratio, sy = (event.clientY - box.top) * ratio;
    const factor = event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP;
    const scale = Math.min(64, Math.max(0.1, this.scale * factor));
    this.offsetX = sx - (sx - this.offsetX) * (scale / this.scale);
    this.offsetY = sy - (sy - this.offsetY) * (scale / this.scale);
    this.scale = scale;
    this.render();
  }
}

function capturePointer(canvas, event) {
  try { canvas.setPointerCapture(event.pointerId); } catch { /* a synthetic event has no pointer to capture */ }
}

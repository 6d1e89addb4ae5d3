// Line plots on a plain canvas: area per frame and confidence per frame, with the current frame marked.

const MARGIN = { left: 48, right: 10, top: 10, bottom: 22 };

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** Draw `series` ([{name, colour: [r,g,b], values}]) over frames 0..frames-1; `message` when there is nothing. */
export function drawPlot(canvas, { series = [], frames = 0, current = 0, yMax = null, yLabel = "", message = "" }) {
  const ratio = window.devicePixelRatio || 1;
  const box = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(box.width * ratio));
  canvas.height = Math.max(1, Math.round(box.height * ratio));
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  const width = box.width, height = box.height;
  context.clearRect(0, 0, width, height);
  context.font = "11px system-ui, sans-serif";
  context.fillStyle = "#9aa4b2";
  if (!series.length || frames < 1) {
    context.fillText(message || "no data", MARGIN.left, height / 2);
    return;
  }
  const top = yMax ?? niceMax(Math.max(...series.flatMap((s) => s.values)));
  const plotWidth = width - MARGIN.left - MARGIN.right, plotHeight = height - MARGIN.top - MARGIN.bottom;
  const x = (t) => MARGIN.left + (frames > 1 ? (t / (frames - 1)) * plotWidth : plotWidth / 2);
  const y = (v) => MARGIN.top + plotHeight * (1 - v / top);
  context.strokeStyle = "#3a4250";
  context.lineWidth = 1;
  context.strokeRect(MARGIN.left, MARGIN.top, plotWidth, plotHeight);
  context.fillText(formatNumber(top), 4, MARGIN.top + 8);
  context.fillText("0", 4, MARGIN.top + plotHeight);
  context.fillText(yLabel, 4, MARGIN.top + plotHeight / 2);
  context.fillText(`frame ${frames - 1}`, width - MARGIN.right - 50, height - 6);
  context.fillText("0", MARGIN.left, height - 6);
  for (const one of series) {
    context.strokeStyle = `rgb(${one.colour.join(",")})`;
    context.lineWidth = 1.5;
    context.beginPath();
    one.values.forEach((value, t) => (t ? context.lineTo(x(t), y(value)) : context.moveTo(x(t), y(value))));
    context.stroke();
  }
  context.strokeStyle = "#f5f7fa";
  context.setLineDash([3, 3]);
  context.beginPath();
  context.moveTo(x(current), MARGIN.top);
  context.lineTo(x(current), MARGIN.top + plotHeight);
  context.stroke();
  context.setLineDash([]);
  drawLegend(context, series, MARGIN.left + 6, MARGIN.top + 12);
}

function drawLegend(context, series, left, top) {
  let at = left;
  for (const one of series) {
    context.fillStyle = `rgb(${one.colour.join(",")})`;
    context.fillRect(at, top - 8, 10, 3);
    context.fillStyle = "#cfd6df";
    context.fillText(one.name, at + 14, top - 4);
    at += 24 + context.measureText(one.name).width;
  }
}

function formatNumber(value) {
  return value >= 1000 ? `${(value / 1000).toFixed(1)}k` : String(Math.round(value * 100) / 100);
}

/** The frame under a click on a plot drawn by `drawPlot`. */
export function frameAt(canvas, event, frames) {
  const box = canvas.getBoundingClientRect();
  const plotWidth = box.width - MARGIN.left - MARGIN.right;
  const fraction = (event.clientX - box.left - MARGIN.left) / plotWidth;
  return Math.min(frames - 1, Math.max(0, Math.round(fraction * (frames - 1))));
}

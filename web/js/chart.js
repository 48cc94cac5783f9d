// A sparkline: the last N values as an SVG polyline, drawn by our own code (no chart library).
const SVG = "http://www.w3.org/2000/svg";

export class Sparkline {
  constructor(size = 60) {
    this.values = [];
    this.size = size;
    this.svg = document.createElementNS(SVG, "svg");
    this.svg.setAttribute("viewBox", "0 0 100 30");
    this.svg.setAttribute("preserveAspectRatio", "none");
    this.svg.setAttribute("aria-hidden", "true");
    this.line = document.createElementNS(SVG, "polyline");
    this.svg.append(this.line);
  }

  push(value) {
    this.values.push(value);
    if (this.values.length > this.size) this.values.shift();
    const max = Math.max(1, ...this.values);
    const step = 100 / Math.max(1, this.size - 1);
    const offset = this.size - this.values.length;
    this.line.setAttribute("points", this.values.map((v, i) => `${((offset + i) * step).toFixed(1)},${(29 - (v / max) * 28).toFixed(1)}`).join(" "));
  }
}

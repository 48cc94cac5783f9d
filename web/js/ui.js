// DOM helpers. Text always goes in with textContent (never innerHTML), so nothing from the hub can inject markup.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function table(headers, rows, optional = []) {
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((name, i) => h("th", { scope: "col", class: optional.includes(i) ? "opt" : null }, name)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { class: optional.includes(i) ? "opt" : null }, cell)))))));
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n;
  for (const unit of units) { value /= 1024; if (value < 1024 || unit === "TiB") return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`; }
}

export function duration(seconds) {
  if (!seconds) return "–";
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) if (seconds % size === 0) return `${seconds / size}${unit}`;
  return `${seconds}s`;
}

/// Where a view shows what went wrong, in words.
export function errorLine() {
  const line = h("p", { class: "error", role: "alert" });
  return { element: line, show(error) { line.textContent = error ? (error.message || String(error)) : ""; } };
}

/// "7d", "12h", "90m", "30s", or a bare number of seconds; empty → null; otherwise throws.
export function parseDuration(text) {
  text = text.trim();
  if (!text) return null;
  const match = /^(\d+)([smhdw]?)$/.exec(text);
  if (!match) throw new Error(`“${text}” is not a duration like 90s, 15m, 12h or 7d.`);
  return Number(match[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[match[2]];
}

/// "512", "64K", "10G" (binary units); empty → null; otherwise throws.
export function parseSize(text) {
  text = text.trim();
  if (!text) return null;
  const match = /^(\d+)\s*([KMGT]?)(i?B)?$/i.exec(text);
  if (!match) throw new Error(`“${text}” is not a size like 512, 64K or 10G.`);
  return Number(match[1]) * 1024 ** "_KMGT".indexOf((match[2] || "_").toUpperCase());
}

export function count(text) {
  text = text.trim();
  if (!text) return null;
  if (!/^\d+$/.test(text) || Number(text) <= 0) throw new Error(`“${text}” is not a positive number.`);
  return Number(text);
}

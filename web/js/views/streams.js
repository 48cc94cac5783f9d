// Streams: the streams of a slot; one stream's records page by page by offset, a live tail that reconnects by
// itself (a fresh ticket each time, resuming at the last offset seen), and publishing a test message.
import { api, path } from "../api.js";
import { h, table, bytes, errorLine } from "../ui.js";

const PAGE = 20;

export default function streams(root, argument, signedOut) {
  return argument ? detail(root, argument, signedOut) : list(root, signedOut);
}

function list(root, signedOut) {
  const select = h("select", { id: "stream-slot", name: "slot" }, h("option", { value: "", text: "All slots" }));
  const body = h("div");
  const status = errorLine();
  root.append(h("h1", { text: "Streams" }),
    h("section", { class: "card" }, h("label", { for: "stream-slot", text: "Slot" }), select, status.element, body));
  async function refresh() {
    try {
      const query = select.value ? `?slot=${encodeURIComponent(select.value)}` : "";
      const { items } = await api("GET", `/v1/admin/streams${query}`);
      body.replaceChildren(items.length === 0 ? h("p", { class: "hint", text: "No streams." }) :
        table(["Path", "Type", "Records", "Size", "Next offset", "State"], items.map((s) => [
          h("a", { href: `#/streams/${path(s.path)}`, text: s.path }), s.content_type, s.records, bytes(s.bytes), h("span", { class: "mono", text: s.next_offset }),
          s.deleted ? "deleted" : s.closed ? "closed" : "open"]), [1, 4]));
      status.show(null);
    } catch (error) { if (error.status === 401) return signedOut(); status.show(error); }
  }
  api("GET", "/v1/admin/slots").then(({ items }) => {
    for (const slot of items) select.append(h("option", { value: slot.name, text: slot.name }));
  }).catch((error) => status.show(error));
  select.addEventListener("change", refresh);
  refresh();
  return { stop() {} };
}

/// One text per message: JSON messages pretty-printed (records) or compact (the tail); text as it is.
function render(body, contentType, pretty = true) {
  const type = (contentType || "").split(";")[0].trim().toLowerCase();
  if (type === "application/json" || type.endsWith("+json")) {
    try { return JSON.parse(body).map((m) => JSON.stringify(m, null, pretty ? 2 : 0)); } catch { return [body]; }
  }
  return [body];
}

function hex(buffer) {
  const bytes = new Uint8Array(buffer.slice(0, 4096));
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    lines.push(i.toString(16).padStart(6, "0") + "  " + Array.from(bytes.slice(i, i + 16), (b) => b.toString(16).padStart(2, "0")).join(" "));
  }
  return lines.join("\n") + (buffer.byteLength > 4096 ? `\n… ${buffer.byteLength - 4096} more bytes` : "");
}

function detail(root, streamPath, signedOut) {
  const status = errorLine();
  const info = h("p", { class: "hint" });
  const records = h("div");
  const pager = h("div", { class: "actions" });
  const tailBox = h("div", { class: "tail", role: "log", "aria-live": "polite", "aria-label": "Live tail", tabindex: "0" });
  const tailState = h("span", { id: "tail-state", class: "hint", text: "stopped" });
  const tailButton = h("button", { type: "button", text: "Start live tail" });
  const data = h("textarea", { id: "publish-data", name: "data", placeholder: '{"hello":"world"}' });
  const published = h("p", { class: "ok", role: "status" });
  const publishStatus = errorLine();
  root.append(h("p", {}, h("a", { href: "#/streams", text: "← Streams" })), h("h1", { text: streamPath }), info, status.element,
    h("section", { class: "card" }, h("h2", { text: "Records" }), records, pager),
    h("section", { class: "card" }, h("h2", { text: "Live tail" }), h("div", { class: "actions" }, tailButton, tailState), tailBox),
    h("section", { class: "card" }, h("h2", { text: "Publish a test message" }),
      h("form", { "aria-label": "Publish", onsubmit: publish }, h("label", { for: "publish-data", text: "Data" }), data, publishStatus.element, published,
        h("button", { type: "submit", text: "Publish" }))));

  let meta = null;
  const route = `/v1/stream/${path(streamPath)}`;
  const history = [];

  async function load() {
    try {
      meta = await api("GET", `/v1/admin/streams/${path(streamPath)}`);
      info.textContent = `${meta.content_type} · ${meta.records} records · ${bytes(meta.bytes)} · next offset ${meta.next_offset}` +
        (meta.closed ? " · closed" : "") + (meta.forked_from ? ` · forked from ${meta.forked_from}` : "");
      await page("-1");
    } catch (error) { if (error.status === 401) return signedOut(); status.show(error); }
  }

  async function page(offset) {
    const response = await api("GET", `${route}?offset=${encodeURIComponent(offset)}`, undefined, { raw: true });
    const next = response.headers.get("Stream-Next-Offset");
    const type = response.headers.get("Content-Type") || meta.content_type;
    const t = type.split(";")[0].trim();
    let items;
    if (t.startsWith("text/") || t === "application/json" || t.endsWith("+json")) items = render(await response.text(), type);
    else items = [hex(await response.arrayBuffer())];
    const shown = items.slice(0, PAGE * 50);
    records.replaceChildren(shown.length === 0 || (shown.length === 1 && shown[0] === "") ? h("p", { class: "hint", text: "No records here." }) :
      h("div", {}, shown.map((text) => h("pre", { text }))));
    const previous = h("button", { type: "button", class: "quiet", text: "← Earlier", disabled: history.length === 0, onclick: () => page(history.pop()).catch(status.show) });
    const later = h("button", { type: "button", class: "quiet", text: "Later →", disabled: response.headers.get("Stream-Up-To-Date") === "true",
      onclick: () => { history.push(offset); page(next).catch(status.show); } });
    pager.replaceChildren(previous, h("span", { class: "hint mono", text: `offset ${offset} → ${next}` }), later);
  }

  async function publish(event) {
    event.preventDefault();
    published.textContent = "";
    try {
      const response = await api("POST", route, data.value, { headers: { "Content-Type": meta?.content_type || "application/json" }, raw: true });
      published.textContent = `Published; next offset ${response.headers.get("Stream-Next-Offset")}.`;
      publishStatus.show(null);
    } catch (error) { if (error.status === 401) return signedOut(); publishStatus.show(error); }
  }

  // The live tail: EventSource cannot send headers, so each connection uses a fresh single-use ticket.
  let source = null, retry = null, running = false, offset = "now", attempt = 0;
  async function connect() {
    if (!running) return;
    try {
      const { ticket } = await api("POST", "/v1/tickets", { path: streamPath, scope: "read" });
      if (!running) return;
      source = new EventSource(`${route}?offset=${encodeURIComponent(offset)}&live=sse&ticket=${encodeURIComponent(ticket)}`);
      source.addEventListener("open", () => { attempt = 0; tailState.textContent = "live"; });
      source.addEventListener("data", (e) => {
        for (const text of render(e.data, meta?.content_type, false)) tailBox.append(h("div", { text }));
        while (tailBox.childElementCount > 500) tailBox.firstElementChild.remove();
        tailBox.scrollTop = tailBox.scrollHeight;
      });
      source.addEventListener("control", (e) => {
        const control = JSON.parse(e.data);
        offset = control.streamNextOffset || offset;
        if (control.streamClosed) { stopTail(); tailState.textContent = "the stream is closed"; }
      });
      source.addEventListener("error", () => reconnect());
    } catch (error) {
      if (error.status === 401) return signedOut();
      reconnect(error);
    }
  }
  function reconnect(error) {
    source?.close();
    source = null;
    if (!running) return;
    const delay = Math.random() * Math.min(10000, 500 * 2 ** attempt++);
    tailState.textContent = `reconnecting${error ? ` (${error.message})` : ""}…`;
    retry = setTimeout(connect, delay);
  }
  function stopTail() {
    running = false;
    clearTimeout(retry);
    source?.close();
    source = null;
    tailButton.textContent = "Start live tail";
    tailState.textContent = "stopped";
  }
  tailButton.addEventListener("click", () => {
    if (running) return stopTail();
    running = true;
    tailButton.textContent = "Stop live tail";
    tailState.textContent = "connecting…";
    connect();
  });

  load();
  return { stop: stopTail };
}

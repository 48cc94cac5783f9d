// Live figures: appends/s and deliveries/s (from the stats counters), connections by transport, storage per slot.
import { api } from "../api.js";
import { h, table, bytes } from "../ui.js";
import { Sparkline } from "../chart.js";

const EVERY_MS = 2000;

export default function overview(root, _argument, signedOut) {
  const cards = {};
  function card(key, label) {
    const value = h("div", { class: "value", text: "–" });
    const chart = new Sparkline();
    cards[key] = { value, chart };
    return h("div", { class: "stat", role: "group", "aria-label": label }, h("div", { class: "label", text: label }), value, chart.svg);
  }
  const storage = h("div");
  const facts = h("p", { class: "hint" });
  const problem = h("p", { class: "error", role: "alert" });
  root.append(h("h1", { text: "Overview" }),
    h("div", { class: "grid" }, card("appends", "Appends/s"), card("deliveries", "Deliveries/s"), card("connections", "Connections"), card("live", "Live followers: SSE · poll · WS")),
    facts, problem, h("section", { class: "card" }, h("h2", { text: "Storage per slot" }), storage));

  let last = null;
  let timer = null;
  let stopped = false;
  async function tick() {
    try {
      const [stats, connections, slots] = await Promise.all([
        api("GET", "/v1/admin/stats"), api("GET", "/v1/admin/connections").catch(() => null), api("GET", "/v1/admin/slots")]);
      const now = performance.now();
      if (last) {
        const seconds = (now - last.at) / 1000;
        const appends = Math.max(0, (stats.appended_total - last.appended) / seconds);
        const deliveries = Math.max(0, (stats.delivered_total - last.delivered) / seconds);
        cards.appends.value.textContent = appends.toFixed(appends < 10 ? 1 : 0);
        cards.deliveries.value.textContent = deliveries.toFixed(deliveries < 10 ? 1 : 0);
        cards.appends.chart.push(appends);
        cards.deliveries.chart.push(deliveries);
      }
      last = { at: now, appended: stats.appended_total, delivered: stats.delivered_total };
      if (connections) {
        cards.connections.value.textContent = connections.http;
        cards.connections.chart.push(connections.http);
        cards.live.value.textContent = `${connections.sse} · ${connections.long_poll} · ${connections.websocket}`;
        cards.live.chart.push(connections.sse + connections.long_poll + connections.websocket);
      }
      facts.textContent = `Version ${stats.version} · up ${Math.floor(stats.uptime_s / 60)} min · ${stats.slots} slots · ${stats.streams} streams · ` +
        `${stats.records} records · ${bytes(stats.bytes)}` + (stats.http_listener ? ` · HTTP on ${stats.http_listener}` : "");
      storage.replaceChildren(slots.items.length === 0 ? h("p", { class: "hint", text: "No slots yet." }) :
        table(["Slot", "Streams", "Records", "Size", "Head seq"], slots.items.map((s) => [s.name, s.streams, s.records, bytes(s.bytes), s.head_seq])));
      problem.textContent = "";
    } catch (error) {
      if (error.status === 401) return signedOut();
      if (error.status !== 0) problem.textContent = error.message;
    }
    if (!stopped) timer = setTimeout(tick, EVERY_MS);
  }
  tick();
  return { stop() { stopped = true; clearTimeout(timer); } };
}

// Durable consumers: how far behind each one is, and resetting one.
import { api, path } from "../api.js";
import { h, table, errorLine } from "../ui.js";

export default function consumers(root, _argument, signedOut) {
  const status = errorLine();
  const list = h("div");
  root.append(h("h1", { text: "Consumers" }), h("section", { class: "card" }, status.element, list));
  let timer = null;
  async function refresh() {
    try {
      const { items } = await api("GET", "/v1/admin/consumers");
      status.show(null);
      list.replaceChildren(items.length === 0 ? h("p", { class: "hint", text: "No durable consumers." }) :
        table(["Slot", "Name", "Stream", "Acked", "Head", "Lag", "Updated", ""], items.map((c) => [c.slot, c.name, c.stream || "(whole slot)",
          c.acked_seq, c.head_seq, c.lag, c.updated_at,
          h("button", { type: "button", class: "quiet", text: "Reset", "aria-label": `Reset ${c.name}`, onclick: async () => {
            try { await api("DELETE", `/v1/admin/consumers/${path(c.slot)}/${path(c.name)}`); refresh(); } catch (error) { status.show(error); }
          } })]), [2, 6]));
    } catch (error) { if (error.status === 401) return signedOut(); status.show(error); }
  }
  refresh();
  timer = setInterval(refresh, 5000);
  return { stop() { clearInterval(timer); } };
}

// Slots: list, create, edit retention/limits/anonymous access, delete (with an inline confirmation).
import { api, path } from "../api.js";
import { h, table, bytes, duration, errorLine, parseDuration, parseSize, count } from "../ui.js";

export default function slots(root, _argument, signedOut) {
  const list = h("div");
  const status = errorLine();
  const form = slotForm(async (document, editing) => {
    if (editing) await api("PATCH", `/v1/admin/slots/${path(editing)}`, document);
    else await api("POST", "/v1/admin/slots", document);
    await refresh();
    return editing ? `Saved slot ${editing}.` : `Created slot ${document.name}.`;
  }, signedOut);
  root.append(h("h1", { text: "Slots" }), form.element, h("section", { class: "card" }, h("h2", { text: "All slots" }), status.element, list));

  async function remove(name, cell) {
    const confirm = h("button", { type: "button", class: "danger", text: `Delete ${name} and all its data`, onclick: async () => {
      try { await api("DELETE", `/v1/admin/slots/${path(name)}`); await refresh(); } catch (error) { if (error.status === 401) signedOut(); status.show(error); }
    } });
    cell.replaceChildren(confirm, h("button", { type: "button", class: "quiet", text: "Cancel", onclick: refresh }));
    confirm.focus();
  }

  async function refresh() {
    try {
      const { items } = await api("GET", "/v1/admin/slots");
      status.show(null);
      list.replaceChildren(items.length === 0 ? h("p", { class: "hint", text: "No slots yet: create one above." }) :
        table(["Name", "Streams", "Records", "Size", "Retention", "Anonymous", ""], items.map((s) => {
          const actions = h("div", { class: "actions" });
          actions.append(h("button", { type: "button", class: "quiet", text: "Edit", "aria-label": `Edit ${s.name}`, onclick: () => form.edit(s) }),
            h("button", { type: "button", class: "quiet", text: "Delete", "aria-label": `Delete ${s.name}`, onclick: () => remove(s.name, actions) }));
          return [s.name, s.streams, s.records, bytes(s.bytes), retention(s.retention),
            [s.anonymous.read && "read", s.anonymous.append && "append"].filter(Boolean).join(", ") || "none", actions];
        }), [1, 5]));
    } catch (error) { if (error.status === 401) return signedOut(); status.show(error); }
  }
  refresh();
  return { stop() {} };
}

function retention(r) {
  const parts = [];
  if (r.max_age_s) parts.push(`age ${duration(r.max_age_s)}`);
  if (r.max_bytes) parts.push(`size ${bytes(r.max_bytes)}`);
  if (r.max_records) parts.push(`${r.max_records} records`);
  return parts.join(", ") || "forever";
}

function slotForm(save, signedOut) {
  const field = (id, label, hint) => {
    const input = h("input", { id, name: id, autocomplete: "off", placeholder: hint });
    return { input, element: h("div", {}, h("label", { for: id, text: label }), input) };
  };
  const name = field("slot-name", "Name", "acme");
  const age = field("slot-max-age", "Max age", "7d (empty: forever)");
  const size = field("slot-max-bytes", "Max size", "10G");
  const records = field("slot-max-records", "Max records", "1000000");
  const message = field("slot-max-message", "Max event size", "1M (empty: hub default)");
  const subscribers = field("slot-max-subscribers", "Max subscribers", "10000");
  const read = h("input", { type: "checkbox", id: "slot-anon-read" });
  const append = h("input", { type: "checkbox", id: "slot-anon-append" });
  const title = h("h2", { text: "Create a slot" });
  const submit = h("button", { type: "submit", text: "Create" });
  const cancel = h("button", { type: "button", class: "quiet", text: "Cancel", hidden: true });
  const status = errorLine();
  const done = h("p", { class: "ok", role: "status" });
  let editing = null;
  const element = h("form", { class: "card", "aria-label": "Slot settings" }, title,
    h("div", { class: "row" }, name.element, age.element, size.element, records.element),
    h("div", { class: "row" }, message.element, subscribers.element,
      h("div", {}, h("label", { class: "check", for: "slot-anon-read" }, read, "Anonymous read"), h("label", { class: "check", for: "slot-anon-append" }, append, "Anonymous append"))),
    status.element, done, h("div", { class: "actions" }, submit, cancel));

  function reset() {
    editing = null;
    element.reset();
    name.input.disabled = false;
    title.textContent = "Create a slot";
    submit.textContent = "Create";
    cancel.hidden = true;
  }
  cancel.addEventListener("click", reset);
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    done.textContent = "";
    try {
      const document = {
        retention: { max_age_s: parseDuration(age.input.value), max_bytes: parseSize(size.input.value), max_records: count(records.input.value) },
        limits: { max_message_bytes: parseSize(message.input.value), max_subscribers: count(subscribers.input.value) },
        anonymous: { read: read.checked, append: append.checked },
      };
      if (!editing) document.name = name.input.value.trim();
      done.textContent = await save(document, editing);
      status.show(null);
      reset();
    } catch (error) { if (error.status === 401) return signedOut(); status.show(error); }
  });
  return {
    element,
    edit(slot) {
      editing = slot.name;
      name.input.value = slot.name;
      name.input.disabled = true;
      age.input.value = slot.retention.max_age_s ? duration(slot.retention.max_age_s) : "";
      size.input.value = slot.retention.max_bytes ?? "";
      records.input.value = slot.retention.max_records ?? "";
      message.input.value = slot.limits.max_message_bytes ?? "";
      subscribers.input.value = slot.limits.max_subscribers ?? "";
      read.checked = !!slot.anonymous.read;
      append.checked = !!slot.anonymous.append;
      title.textContent = `Edit slot ${slot.name}`;
      submit.textContent = "Save";
      cancel.hidden = false;
      age.input.focus();
    },
  };
}

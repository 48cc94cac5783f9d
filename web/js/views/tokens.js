// Tokens: mint (the secret shown once, with a copy button), list, rotate, revoke.
import { api, path } from "../api.js";
import { h, table, errorLine, parseDuration } from "../ui.js";

const SCOPES = ["read", "append", "create", "delete", "consume", "admin"];

export default function tokens(root, _argument, signedOut) {
  const status = errorLine();
  const secretBox = h("div", { role: "status" });
  const list = h("div");
  const slot = h("select", { id: "token-slot", name: "slot" }, h("option", { value: "*", text: "* (every slot)" }));
  const scopes = SCOPES.map((scope) => h("input", { type: "checkbox", id: `scope-${scope}`, value: scope, checked: scope === "read" }));
  const label = h("input", { id: "token-label", name: "label", required: true, placeholder: "order service" });
  const prefix = h("input", { id: "token-prefix", name: "prefix", placeholder: "acme/orders (optional)" });
  const expires = h("input", { id: "token-expires", name: "expires", placeholder: "30d (optional)" });
  const mintStatus = errorLine();
  const form = h("form", { class: "card", "aria-label": "Mint a token" }, h("h2", { text: "Mint a token" }),
    h("div", { class: "row" }, h("div", {}, h("label", { for: "token-slot", text: "Slot" }), slot),
      h("div", {}, h("label", { for: "token-label", text: "Label" }), label)),
    h("fieldset", {}, h("legend", { text: "Scopes" }), h("div", { class: "actions" }, scopes.map((box) => h("label", { class: "check", for: box.id }, box, box.value)))),
    h("div", { class: "row" }, h("div", {}, h("label", { for: "token-prefix", text: "Path prefix" }), prefix),
      h("div", {}, h("label", { for: "token-expires", text: "Expires after" }), expires)),
    mintStatus.element, h("button", { type: "submit", text: "Mint" }));
  root.append(h("h1", { text: "Tokens" }), form, secretBox, h("section", { class: "card" }, h("h2", { text: "Tokens" }), status.element, list));

  function showSecret(token, what) {
    const code = h("code", { id: "new-secret", text: token.token });
    const copy = h("button", { type: "button", text: "Copy", onclick: async () => {
      try { await navigator.clipboard.writeText(token.token); copy.textContent = "Copied"; } catch {
        const range = document.createRange(); range.selectNodeContents(code); getSelection().removeAllRanges(); getSelection().addRange(range);
        copy.textContent = "Selected: press Ctrl+C";
      }
    } });
    secretBox.replaceChildren(h("section", { class: "card" }, h("h2", { text: `${what} ${token.id}` }),
      h("p", { text: "Copy the secret now: it is shown only this once." }), h("div", { class: "secret" }, code, copy),
      h("button", { type: "button", class: "quiet", text: "Done", onclick: () => secretBox.replaceChildren() })));
    copy.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const document = { slot: slot.value, scopes: scopes.filter((b) => b.checked).map((b) => b.value), label: label.value.trim() };
      if (prefix.value.trim()) document.prefix = prefix.value.trim();
      const seconds = parseDuration(expires.value);
      if (seconds) document.expires_in_s = seconds;
      const token = await api("POST", "/v1/admin/tokens", document);
      mintStatus.show(null);
      form.reset();
      showSecret(token, "Minted");
      refresh();
    } catch (error) { if (error.status === 401) return signedOut(); mintStatus.show(error); }
  });

  function confirmRevoke(token, cell) {
    const yes = h("button", { type: "button", class: "danger", text: `Revoke ${token.label}`, onclick: async () => {
      try { await api("DELETE", `/v1/admin/tokens/${path(token.id)}`); refresh(); } catch (error) { if (error.status === 401) signedOut(); status.show(error); }
    } });
    cell.replaceChildren(yes, h("button", { type: "button", class: "quiet", text: "Cancel", onclick: refresh }));
    yes.focus();
  }

  async function rotate(token) {
    try { showSecret(await api("POST", `/v1/admin/tokens/${path(token.id)}/rotate`, { overlap_s: 0 }), "Rotated into"); refresh(); }
    catch (error) { if (error.status === 401) return signedOut(); status.show(error); }
  }

  async function refresh() {
    try {
      const { items } = await api("GET", "/v1/admin/tokens");
      status.show(null);
      list.replaceChildren(table(["Label", "Id", "Slot", "Scopes", "Expires", "Last used", "State", ""], items.map((t) => {
        const actions = h("div", { class: "actions" });
        if (!t.revoked_at) {
          actions.append(h("button", { type: "button", class: "quiet", text: "Rotate", "aria-label": `Rotate ${t.label}`, onclick: () => rotate(t) }),
            h("button", { type: "button", class: "quiet", text: "Revoke", "aria-label": `Revoke ${t.label}`, onclick: () => confirmRevoke(t, actions) }));
        }
        return [t.label, h("span", { class: "mono", text: t.id }), t.slot, t.scopes.join(", "), t.expires_at || "never", t.last_used_at || "never",
          t.revoked_at ? "revoked" : "active", actions];
      }), [1, 4, 5]));
    } catch (error) { if (error.status === 401) return signedOut(); status.show(error); }
  }
  api("GET", "/v1/admin/slots").then(({ items }) => { for (const s of items) slot.append(h("option", { value: s.name, text: s.name })); })
    .catch((error) => status.show(error));
  refresh();
  return { stop() {} };
}

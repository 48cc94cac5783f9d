// The console shell: sign-in, navigation by hash (#/slots, #/streams/acme/orders…), the connection banner.
// Each view is a function (root, argument) → { stop() } that builds its own DOM and cleans up its timers.
import { api, session, onConnectionChange } from "./api.js";
import overview from "./views/overview.js";
import slots from "./views/slots.js";
import streams from "./views/streams.js";
import tokens from "./views/tokens.js";
import consumers from "./views/consumers.js";

const views = { overview, slots, streams, tokens, consumers };
const $ = (id) => document.getElementById(id);
let current = null;

function showSignIn(message = "") {
  current?.stop?.();
  current = null;
  $("top").hidden = true;
  $("view").replaceChildren();
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  $("token").focus();
}

async function route() {
  if (!session.token) return showSignIn();
  $("sign-in").hidden = true;
  $("top").hidden = false;
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  if (!views[name]) { location.hash = "#/overview"; return; }
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  current?.stop?.();
  const root = $("view");
  root.replaceChildren();
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · EventHub console`;
  current = views[name](root, rest.map(decodeURIComponent).join("/"), () => showSignIn("Your token is no longer valid; sign in again."));
  $("main").focus({ preventScroll: true });
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  session.token = token;
  try {
    await api("GET", "/v1/admin/stats");
    $("token").value = "";
    if (!location.hash || location.hash === "#/") location.hash = "#/overview"; else route();
    if (location.hash === "#/overview") route();
  } catch (error) {
    session.token = null;
    $("sign-in-error").textContent = error.status === 401 ? "That token is not valid (or has been revoked)." :
      error.status === 403 ? "That token has no admin scope." : error.message;
  }
});

$("sign-out").addEventListener("click", () => { session.token = null; location.hash = ""; showSignIn("Signed out."); });

onConnectionChange((online) => {
  const banner = $("banner");
  banner.hidden = online;
  banner.textContent = online ? "" : "The connection to the hub is lost. Retrying…";
});

window.addEventListener("hashchange", route);
route();

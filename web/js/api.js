// The admin API client: the token from sessionStorage, problem+json turned into readable errors, and the
// connection state reported to the shell (a banner while the hub cannot be reached).
const KEY = "eventhub.token";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || `The hub answered ${status}.`);
    this.status = status;
    this.code = code;
  }
}

const listeners = new Set();
let online = true;
function setOnline(value) {
  if (value === online) return;
  online = value;
  for (const listener of listeners) listener(online);
}
export function onConnectionChange(listener) { listeners.add(listener); }

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set token(value) { value ? sessionStorage.setItem(KEY, value) : sessionStorage.removeItem(KEY); },
};

export async function api(method, path, body, { headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers }, cache: "no-store" };
  if (session.token) init.headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) {
    if (typeof body === "string") { init.body = body; } else { init.body = JSON.stringify(body); init.headers["Content-Type"] ??= "application/json"; }
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    setOnline(false);
    throw new ApiError(0, "unreachable", "The hub cannot be reached; retrying.");
  }
  setOnline(true);
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch { /* not a problem document */ }
    if (response.status === 401) session.token = null;
    throw new ApiError(response.status, problem.code || `http-${response.status}`, problem.detail || problem.title);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const path = (text) => text.split("/").map(encodeURIComponent).join("/");

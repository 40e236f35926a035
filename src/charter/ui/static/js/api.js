// The node's REST API, from the page's own origin. Errors are problem+json: the
// thrown ApiError carries the stable code and the node's detail.

export class ApiError extends Error {
  constructor(path, status, code, detail) {
    super(`${path}: ${status ? `HTTP ${status} ` : ""}${code}${detail ? ` — ${detail}` : ""}`);
    this.path = path;
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

const TIMEOUT_MS = 8000;

export async function getJSON(path, params) {
  const query = params ? `?${encodeParams(params)}` : "";
  const url = `${path}${query}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, { headers: { accept: "application/json" }, signal: controller.signal });
  } catch (err) {
    const why = err && err.name === "AbortError" ? `no answer within ${TIMEOUT_MS / 1000} s` : "the node did not answer";
    throw new ApiError(path, 0, "network", why);
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const code = body && typeof body.code === "string" ? body.code : "http";
    const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
    throw new ApiError(path, response.status, code, detail);
  }
  if (body === null) throw new ApiError(path, response.status, "bad_json", "the answer is not JSON");
  return body;
}

function encodeParams(params) {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.append(key, String(v));
    else out.append(key, String(value));
  }
  return out.toString();
}

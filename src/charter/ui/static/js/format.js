// Formatting of the API's values: amounts are decimal strings of any size, times are
// microseconds since the epoch (strings or numbers) or RFC 3339 text.

/** "1234567" with 2 decimals -> "12,345.67" (exact: BigInt, never floating point). */
export function amount(text, decimals = 0) {
  const raw = String(text ?? "0");
  if (!/^-?\d+$/.test(raw)) return raw;
  const negative = raw.startsWith("-");
  let digits = negative ? raw.slice(1) : raw;
  let fraction = "";
  if (decimals > 0) {
    digits = digits.padStart(decimals + 1, "0");
    fraction = digits.slice(-decimals).replace(/0+$/, "");
    digits = digits.slice(0, -decimals);
  }
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${grouped}${fraction ? `.${fraction}` : ""}`;
}

/** value / max as a number in [0, 1], exactly enough for drawing. */
export function ratio(value, max) {
  try {
    const v = BigInt(value);
    const m = BigInt(max);
    if (m <= 0n || v <= 0n) return 0;
    return Number((v * 10000n) / m) / 10000;
  } catch {
    return 0;
  }
}

export function timeOfUs(us) {
  if (us === null || us === undefined || us === "") return "";
  const ms = Number(BigInt(us) / 1000n);
  return clock(new Date(ms));
}

export function timeOfIso(text) {
  if (!text) return "";
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? String(text) : clock(d);
}

function clock(d) {
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

export function short(text, keep = 10) {
  if (text === null || text === undefined) return "";
  const t = String(text);
  return t.length <= keep + 1 ? t : `${t.slice(0, keep)}…`;
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function num(value) {
  return value === null || value === undefined ? "—" : String(value);
}

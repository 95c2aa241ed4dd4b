// How values are written on the page: times (UTC or the browser's zone), durations, statuses.
// Pure functions of their arguments (the time zone is passed in), so every view formats alike.

const utcFormat = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'UTC', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
let localFormat = null;

export function localZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
}

function parts(format, date) {
  const out = {};
  for (const part of format.formatToParts(date)) out[part.type] = part.value;
  return out;
}

/** "2026-11-27 21:07:00.000 UTC" or the same in the browser's zone with its name; "—" when absent. */
const CANONICAL = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const zoneNames = new Map(); // offset in minutes -> the zone's short name at that offset
const two = (n) => String(n).padStart(2, '0');

function zoneName(date) {
  const offset = date.getTimezoneOffset();
  if (!zoneNames.has(offset)) {
    localFormat ??= new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' });
    zoneNames.set(offset, parts(localFormat, date).timeZoneName || '');
  }
  return zoneNames.get(offset);
}

// Thousands of times per timeline: plain string and Date arithmetic, Intl only once per offset.
export function formatTime(iso, zone) {
  if (!iso) return '—';
  if (zone !== 'local' && CANONICAL.test(iso)) return `${iso.slice(0, 10)} ${iso.slice(11, 23)} UTC`;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const ms = String(date.getUTCMilliseconds()).padStart(3, '0');
  if (zone === 'local') {
    return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:`
      + `${two(date.getMinutes())}:${two(date.getSeconds())}.${ms} ${zoneName(date)}`;
  }
  const p = parts(utcFormat, date);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}.${ms} UTC`;
}

/** A length of time in words: "1 h 2 min", "3 min 4 s", "850 ms". */
export function formatDuration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  let seconds = Math.round(ms / 1000);
  const days = Math.floor(seconds / 86400); seconds -= days * 86400;
  const hours = Math.floor(seconds / 3600); seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60); seconds -= minutes * 60;
  const out = [];
  if (days) out.push(`${days} d`);
  if (hours) out.push(`${hours} h`);
  if (minutes && !days) out.push(`${minutes} min`);
  if (seconds && !days && !hours) out.push(`${seconds} s`);
  return out.join(' ') || '0 s';
}

/** Duration against the estimate (est_duration is in seconds, duration in milliseconds). */
export function durationText(element, now = Date.now()) {
  const started = element.started?.timestamp ? Date.parse(element.started.timestamp) : null;
  const active = !element.completed;
  const ms = active ? (started === null ? null : Math.max(0, now - started)) : element.duration;
  let text = ms === null || ms === undefined ? '—' : formatDuration(ms);
  if (active && ms !== null) text += ' so far';
  if (element.est_duration !== undefined && element.est_duration !== null) {
    const estimate = element.est_duration * 1000;
    text += ` of est. ${formatDuration(estimate)}`;
    if (ms !== null && ms !== undefined && ms > estimate) text += ' (over)';
  }
  return text;
}

export function isActive(element) {
  return !element.completed;
}

/** Status in words with an icon that is not a colour: never colour alone (WCAG 1.4.1). */
export function statusBadge(element) {
  const active = isActive(element);
  const badge = document.createElement('span');
  badge.className = active ? 'status status-active' : 'status status-completed';
  const icon = document.createElement('span');
  icon.className = 'status-icon';
  icon.setAttribute('aria-hidden', 'true');
  icon.textContent = active ? '▶' : '✓';
  badge.append(icon, active ? 'Active' : 'Completed');
  return badge;
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe inside HTML markup: what the API returns (types, dispositions) is never markup. */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** statusBadge as markup, for the views that write thousands of rows as one string. */
export function statusHtml(element) {
  return isActive(element)
    ? '<span class="status status-active"><span class="status-icon" aria-hidden="true">▶</span>Active</span>'
    : '<span class="status status-completed"><span class="status-icon" aria-hidden="true">✓</span>Completed</span>';
}

/** Compare service ids (decimal strings of 64-bit integers) as numbers. */
export function compareIds(a, b) {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Newest first: by started.timestamp descending, then service id descending (§5's order, reversed). */
export function newestFirst(a, b) {
  const ta = a.started?.timestamp || '';
  const tb = b.started?.timestamp || '';
  if (ta !== tb) return ta < tb ? 1 : -1;
  return compareIds(b.service_id, a.service_id);
}

/** An <input type="datetime-local"> value read in the chosen zone, as the API's ISO 8601. */
export function inputToIso(value, zone) {
  if (!value) return '';
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  const date = zone === 'local' ? new Date(withSeconds) : new Date(`${withSeconds}Z`);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

/** The reverse: an ISO instant as an <input type="datetime-local"> value in the chosen zone. */
export function isoToInput(iso, zone) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const shifted = zone === 'local' ? new Date(date.getTime() - date.getTimezoneOffset() * 60000) : date;
  return shifted.toISOString().slice(0, 19);
}

/** Resolves once the browser has drawn the next frame (what the page shows is on the screen). */
export function nextFrame() {
  return new Promise((resolve) => { window.requestAnimationFrame(() => window.setTimeout(resolve, 0)); });
}

/** Make an element with attributes and children in one call. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key === 'text') element.textContent = value;
    else if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) element.append(child);
  }
  return element;
}

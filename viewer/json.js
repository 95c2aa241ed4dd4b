// Attached data as collapsible JSON: objects and arrays are <details> (keyboard and screen-reader
// friendly by nature), values are written as JSON writes them.
import { h } from './format.js';

function scalar(value) {
  if (typeof value === 'string') return h('span', { class: 'string', text: JSON.stringify(value) });
  if (typeof value === 'number') return h('span', { class: 'number', text: String(value) });
  return h('span', { class: 'literal', text: String(value) });
}

function node(key, value, open) {
  const label = key === null ? [] : [h('span', { class: 'key', text: JSON.stringify(key) }), ': '];
  if (value === null || typeof value !== 'object') return h('li', {}, ...label, scalar(value));
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const kind = Array.isArray(value) ? `array, ${entries.length} item${entries.length === 1 ? '' : 's'}`
    : `object, ${entries.length} key${entries.length === 1 ? '' : 's'}`;
  const list = h('ul', {}, entries.map(([k, v]) => node(Array.isArray(value) ? null : k, v, false)));
  return h('li', {}, h('details', { open }, h('summary', {}, ...label, h('span', { class: 'literal', text: `{${kind}}` })), list));
}

/** The element's attached data (an object of keys), collapsible; top level open. */
export function jsonTree(data) {
  const keys = Object.keys(data);
  if (!keys.length) return h('p', { text: 'No attached data.' });
  return h('ul', { class: 'json' }, keys.map((key) => node(key, data[key], true)));
}

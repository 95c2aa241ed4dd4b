// One element of a journey (the service, a state or a task) in a modal dialog: its start and end
// events side by side, its disposition, its attached data, the curl command that reads it, and
// the actions the person's role allows.
import { encode } from '../api.js';
import { durationText, formatTime, h, statusBadge } from '../format.js';
import { jsonTree } from '../json.js';
import * as actions from './actions.js';

const dialog = document.getElementById('element-dialog');
const FIELDS = new Set(['service_id', 'service_type', 'customer_id', 'contact_key', 'est_duration', 'started', 'completed',
  'duration', 'disposition', 'disposition_desc', 'expiration_time', 'active_states', 'completed_states', 'active_tasks',
  'completed_tasks', 'state_id', 'state_type', 'previous_state_id', 'task_id', 'task_type']);
const EVENT_ORDER = ['timestamp', 'session_id', 'interaction_id', 'application_type', 'application_id', 'resource_type',
  'resource_id', 'media_type'];

export function attachedData(element) {
  return Object.fromEntries(Object.entries(element).filter(([key]) => !FIELDS.has(key)));
}

export function title(kind, element) {
  if (kind === 'service') return `Service ${element.service_id} (${element.service_type ?? 'no type'})`;
  return `${kind === 'state' ? 'State' : 'Task'} ${element[`${kind}_id`]} (${element[`${kind}_type`] ?? 'no type'})`;
}

function readPath(kind, service, element) {
  const sid = encode(service.service_id);
  if (kind === 'service') return `services/${sid}`;
  return `services/${sid}/${kind}s/${element[`${kind}_id`]}`;
}

function eventsTable(element, zone) {
  const started = element.started || {};
  const completed = element.completed || {};
  const keys = [...new Set([...EVENT_ORDER, ...Object.keys(started), ...Object.keys(completed)])]
    .filter((key) => key in started || key in completed);
  const cell = (event, key) => {
    if (!(key in event)) return '—';
    return key === 'timestamp' ? formatTime(event[key], zone) : String(event[key]);
  };
  return h('table', { class: 'events', id: 'element-events' },
    h('caption', { text: 'Start and end events' }),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Field' }), h('th', { scope: 'col', text: 'Started' }),
      h('th', { scope: 'col', text: element.completed ? 'Completed' : 'Completed (not yet)' }))),
    h('tbody', {}, keys.map((key) => h('tr', {}, h('th', { scope: 'row', text: key }),
      h('td', { text: cell(started, key) }), h('td', { text: cell(completed, key) })))));
}

function facts(kind, service, element, zone) {
  const rows = [['Status', statusBadge(element)], ['Type', String(element[`${kind}_type`] ?? '—')]];
  if (kind === 'service') {
    rows.push(['Customer', element.customer_id ?? 'anonymous'], ['Contact key', element.contact_key ?? '—']);
  }
  if (kind === 'state') rows.push(['Follows state', element.previous_state_id ? String(element.previous_state_id) : '— (first)']);
  if (kind === 'task') rows.push(['In state', element.state_id ? String(element.state_id) : '— (not in a state)']);
  rows.push(['Duration', durationText(element)],
    ['Disposition', element.disposition !== undefined ? String(element.disposition) : '—'],
    ['Disposition description', element.disposition_desc ?? '—']);
  if (kind === 'service') rows.push(['Expires', formatTime(element.expiration_time, zone)]);
  return h('dl', { class: 'facts', id: 'element-facts' }, rows.flatMap(([name, value]) => [h('dt', { text: name }), h('dd', {}, value)]));
}

/** Open the dialog for an element; `onClose` runs after it closed (focus goes back to `opener`). */
export function open(context, service, kind, element, { opener, onClose, after } = {}) {
  const { api, zone } = context;
  const url = api.url(readPath(kind, service, element), { extensions: '*' });
  const curl = api.curl(url);
  const curlText = h('pre', { class: 'curl', id: 'curl-command', text: curl });
  const copy = h('button', { type: 'button', class: 'secondary', id: 'copy-curl', text: 'Copy as curl' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(curl);
      context.announce('The curl command is on the clipboard.');
    } catch {
      const range = document.createRange();
      range.selectNodeContents(curlText);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      context.announce('The clipboard is not available: the curl command is selected, copy it with Ctrl+C.');
    }
  });
  const close = h('button', { type: 'button', class: 'secondary', id: 'element-close', text: 'Close' });
  const heading = h('h2', { id: 'element-title', text: title(kind, element) });
  dialog.replaceChildren(
    h('div', { class: 'dialog-head' }, heading, close),
    facts(kind, service, element, zone),
    h('div', { class: 'actions', id: 'element-actions' }, actions.buttons(context, service, element, kind, () => {
      dialog.close();
      if (after) after();
    })),
    eventsTable(element, zone),
    h('h3', { text: 'Attached data' }),
    h('div', { id: 'attached-data' }, jsonTree(attachedData(element))),
    h('h3', { text: 'Read it with curl' }),
    h('p', { class: 'legend', text: 'The request that reads this element with its attached data. Credentials are not in it: '
      + (context.access.signsRequests ? 'curl signs with your AWS keys from the environment.' : 'add yours if the API needs them.') }),
    curlText, copy);
  const finish = () => {
    dialog.removeEventListener('close', finish);
    if (opener && document.contains(opener)) opener.focus();
    if (onClose) onClose();
  };
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', finish);
  dialog.showModal();
  close.focus();
}

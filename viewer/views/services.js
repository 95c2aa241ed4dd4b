// A customer's services (or a contact key's anonymous services), newest first.
//
// The API lists a customer's services oldest first (§5: by started.timestamp, then service_id),
// in pages joined by Link. To show the newest first without pretending, the view reads pages of
// 1,000 (one call for most customers), shows what it has read newest first, and when the API says
// more exist (a Link) it says so in words: those later services are not shown yet, and "Load
// more" follows the Link and puts them on top. A start window narrows the list to recent ones.
// `limit` in the URL (1-1000) sets the services read per call.
//
// Each page is read twice: as a plain list (drawn as soon as it comes: the first services appear
// without waiting), then with the services' states embedded (the state counts, filled in when
// they come). Two calls per page, never one per service.
import { encode } from '../api.js';
import { durationText, escapeHtml, formatTime, h, inputToIso, isActive, isoToInput, newestFirst, nextFrame, statusHtml } from '../format.js';

const PAGE = 1000;
const FIRST_ROWS = 40;

function listPath(params) {
  const status = params.get('status');
  const suffix = status === 'active' ? '/active' : status === 'completed' ? '/completed' : '';
  if (params.get('customer')) return `customers/${encode(params.get('customer'))}/services${suffix}`;
  return `services/anonymous/${encode(params.get('contact_key') || '')}${suffix}`;
}

function filtersForm(context) {
  const { params, zone } = context;
  const status = params.get('status') || 'all';
  const radio = (value, label) => h('label', {}, h('input', { type: 'radio', name: 'status', value, checked: status === value }), ` ${label}`);
  const zoneName = zone === 'local' ? 'local time' : 'UTC';
  const form = h('form', { class: 'filters', id: 'service-filters', 'aria-labelledby': 'filters-heading' },
    h('h3', { id: 'filters-heading', class: 'visually-hidden', text: 'Filters' }),
    h('fieldset', {}, h('legend', { text: 'Status' }), radio('all', 'All'), radio('active', 'Active'), radio('completed', 'Completed')),
    h('div', { class: 'field' }, h('label', { for: 'filter-types', text: 'Service types (comma-separated)' }),
      h('input', { id: 'filter-types', value: params.get('types') || '', autocomplete: 'off' })),
    h('div', { class: 'field' }, h('label', { for: 'filter-from', text: `Started from (${zoneName})` }),
      h('input', { id: 'filter-from', type: 'datetime-local', step: '1', value: isoToInput(params.get('from'), zone) })),
    h('div', { class: 'field' }, h('label', { for: 'filter-to', text: `Started before (${zoneName})` }),
      h('input', { id: 'filter-to', type: 'datetime-local', step: '1', value: isoToInput(params.get('to'), zone) })),
    h('button', { type: 'submit', text: 'Apply filters' }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams(params);
    const chosen = form.querySelector('input[name="status"]:checked').value;
    const set = (key, value) => { if (value) next.set(key, value); else next.delete(key); };
    set('status', chosen === 'all' ? '' : chosen);
    set('types', form.querySelector('#filter-types').value.split(',').map((t) => t.trim()).filter(Boolean).join(','));
    set('from', inputToIso(form.querySelector('#filter-from').value, zone));
    set('to', inputToIso(form.querySelector('#filter-to').value, zone));
    context.navigate(next);
  });
  return form;
}

function countsOf(services) {
  const counts = { services: services.length, activeServices: 0, states: 0, activeStates: 0, unknown: 0 };
  for (const service of services) {
    if (isActive(service)) counts.activeServices += 1;
    if (!service.active_states) { counts.unknown += 1; continue; }
    const active = service.active_states.length;
    counts.activeStates += active;
    counts.states += active + (service.completed_states?.length || 0);
  }
  return counts;
}

function countsList(services, statesProblem) {
  const c = countsOf(services);
  const states = (label, value) => (statesProblem ? `${label}: not available (${statesProblem})`
    : c.unknown ? `${label}: counting…` : `${label}: ${value}`);
  return h('ul', { class: 'counts', id: 'service-counts', 'aria-label': 'Counts' },
    h('li', { 'data-count': 'services', text: `Services: ${c.services}` }),
    h('li', { 'data-count': 'services-active', text: `Active services: ${c.activeServices}` }),
    h('li', { 'data-count': 'services-completed', text: `Completed services: ${c.services - c.activeServices}` }),
    h('li', { 'data-count': 'states-active', text: states('Active states', c.activeStates) }),
    h('li', { 'data-count': 'states-completed', text: states('Completed states', c.states - c.activeStates) }));
}

function statesText(service) {
  if (!service.active_states) return 'counting…';
  return `${service.active_states.length} active, ${service.completed_states?.length ?? 0} completed`;
}

function serviceRows(context, services) {
  const { params, zone } = context;
  const now = Date.now();
  const rows = services.map((service) => {
    const link = new URLSearchParams(params);
    link.set('service', service.service_id);
    const id = escapeHtml(service.service_id);
    return `<tr data-service-id="${id}"><th scope="row"><a href="?${escapeHtml(link)}" data-service-id="${id}">${id}</a></th>`
      + `<td>${escapeHtml(service.service_type ?? '—')}</td><td>${statusHtml(service)}</td>`
      + `<td class="time">${escapeHtml(formatTime(service.started?.timestamp, zone))}</td>`
      + `<td class="time">${escapeHtml(formatTime(service.completed?.timestamp, zone))}</td>`
      + `<td>${escapeHtml(durationText(service, now))}</td>`
      + `<td class="time">${escapeHtml(formatTime(service.expiration_time, zone))}</td>`
      + `<td data-states="${id}">${escapeHtml(statesText(service))}</td></tr>`;
  });
  const body = document.createElement('tbody');
  // What a screen shows is drawn at once; the rest right after that frame, so that the first
  // services do not wait for the layout of a long table.
  body.innerHTML = rows.slice(0, FIRST_ROWS).join('');
  if (rows.length > FIRST_ROWS) {
    nextFrame().then(() => body.insertAdjacentHTML('beforeend', rows.slice(FIRST_ROWS).join('')));
  }
  body.addEventListener('click', (event) => {
    const open = event.target.closest('a[data-service-id]');
    if (!open || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    context.navigate(new URLSearchParams(open.getAttribute('href').slice(1)));
  });
  return body;
}

function servicesTable(context, services) {
  const head = h('thead', {}, h('tr', {}, ...['Service', 'Type', 'Status', 'Started', 'Ended', 'Duration', 'Expires', 'States']
    .map((name) => h('th', { scope: 'col', text: name }))));
  return h('table', { id: 'services-table' }, h('caption', { text: 'Services, newest first' }), head,
    serviceRows(context, services));
}

export async function show(context) {
  const { params, api, view } = context;
  const owner = params.get('customer')
    ? `Services of customer ${params.get('customer')}` : `Anonymous services with contact key ${params.get('contact_key')}`;
  document.title = `${owner} — Journey viewer`;
  const scope = `Tenant: ${params.get('cc') || 'default'} · Group: ${params.get('group') || 'none'}`;
  const status = h('div', { id: 'services-status', role: 'status' }, h('p', { text: 'Loading services…' }));
  const results = h('div', { id: 'services-results', 'aria-busy': 'true' });
  view.replaceChildren(h('h2', { text: owner }), h('p', { class: 'summary-line', text: scope }), filtersForm(context),
    status, results);
  context.focusHeading();

  const size = Number.parseInt(params.get('limit') || '', 10);
  const query = { limit: size >= 1 && size <= PAGE ? size : PAGE, service_types: params.get('types'), started_from: params.get('from'),
    started_to: params.get('to') };
  const services = [];
  let next = api.url(listPath(params), query);
  let statesProblem = '';

  const draw = () => {
    services.sort(newestFirst);
    const parts = [];
    if (!services.length) {
      parts.push(h('p', { class: 'message', id: 'services-empty',
        text: `No services found (${scope}${params.get('status') ? `, ${params.get('status')} only` : ''}` +
          `${params.get('types') ? `, types ${params.get('types')}` : ''}${params.get('from') || params.get('to') ? ', in the start window' : ''}).` }));
    } else {
      parts.push(countsList(services, statesProblem), servicesTable(context, services));
    }
    if (next) {
      parts.push(h('p', { class: 'message', id: 'services-partial',
        text: `These are the ${services.length} earliest-started services read so far, newest first. ` +
          'The API lists services oldest first: services that started later exist and are not shown yet.' }));
      const more = h('button', { type: 'button', class: 'more', id: 'load-more', text: 'Load more services (started later)' });
      more.addEventListener('click', async () => {
        more.disabled = true;
        more.textContent = 'Loading…';
        await load();
        document.getElementById('services-table')?.querySelector('a')?.focus();
      });
      parts.push(more);
    }
    results.replaceChildren(...parts);
    results.setAttribute('aria-busy', 'false');
    status.replaceChildren(h('p', { text: services.length
      ? `${services.length} service${services.length === 1 ? '' : 's'} shown${next ? ' (more exist)' : ''}.` : 'No services found.' }));
  };

  // The state counts of a page's services, when their call answers: filled in where they are.
  const fillStates = (withStates) => {
    const byId = new Map(withStates.map((service) => [service.service_id, service]));
    for (const service of services) {
      const full = byId.get(service.service_id);
      if (!full || service.active_states) continue;
      service.active_states = full.active_states || [];
      service.completed_states = full.completed_states || [];
      const cell = results.querySelector(`td[data-states="${service.service_id}"]`);
      if (cell) cell.textContent = statesText(service);
    }
    results.querySelector('#service-counts')?.replaceWith(countsList(services, statesProblem));
  };

  const load = async () => {
    const url = next;
    try {
      const page = await api.call('GET', url);
      if (!context.current()) return;
      window.performance.mark('viewer:services-data');
      services.push(...(page.data || []));
      next = page.next;
      draw();
      window.performance.mark('viewer:services-drawn');
    } catch (error) {
      if (!context.current()) return;
      results.setAttribute('aria-busy', 'false');
      status.replaceChildren(h('p', { class: 'message error', id: 'services-error', role: 'alert',
        text: error.explain ? error.explain(context.access.role) : String(error) }));
      return;
    }
    try {
      // Only now, once the list is on the screen: asked at the same time, the heavier call (every
      // service's states) held the list up (the local run's store answers one call at a time, a
      // function has one warm instance) and its work slowed the list's first frame.
      await nextFrame();
      if (!context.current()) return;
      const page = await api.call('GET', `${url}${url.includes('?') ? '&' : '?'}active_states=true&completed_states=true`);
      if (context.current()) fillStates(page.data || []);
    } catch (error) {
      if (!context.current()) return;
      statesProblem = error.message;
      results.querySelector('#service-counts')?.replaceWith(countsList(services, statesProblem));
    }
  };
  await load();
}

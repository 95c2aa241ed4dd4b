// A service's timeline: its states in the order of previous_state_id, each with its tasks, as a
// WAI-ARIA tree with bars on the service's time span (active elements open-ended), and a table
// of the same data. Data: the service, then its states and its tasks as lists of 1,000 per call
// (both lists read at once, each following Link): the calls are the pages needed, never one per
// element. The tree is built in one pass into a fragment; the table only when first shown.
import { durationText, escapeHtml, formatTime, h, isActive, statusBadge, statusHtml } from '../format.js';
import { encode } from '../api.js';
import * as actions from './actions.js';
import * as elementView from './element.js';

const PAGE = 1000;

/** States in journey order: each after the state it follows (previous_state_id), roots by id. */
export function journeyOrder(states) {
  const byId = new Map(states.map((s) => [s.state_id, s]));
  const followers = new Map();
  const roots = [];
  for (const state of [...states].sort((a, b) => a.state_id - b.state_id)) {
    const previous = state.previous_state_id;
    if (previous && byId.has(previous) && previous !== state.state_id) {
      if (!followers.has(previous)) followers.set(previous, []);
      followers.get(previous).push(state);
    } else {
      roots.push(state);
    }
  }
  const order = [];
  const seen = new Set();
  const stack = [...roots].reverse();
  while (stack.length) {
    const state = stack.pop();
    if (seen.has(state.state_id)) continue;
    seen.add(state.state_id);
    order.push(state);
    const next = followers.get(state.state_id) || [];
    for (let i = next.length - 1; i >= 0; i -= 1) stack.push(next[i]);
  }
  for (const state of states) if (!seen.has(state.state_id)) order.push(state); // a cycle: still shown
  return order;
}

function span(service, states, tasks) {
  const start = Date.parse(service.started?.timestamp) || Date.now();
  let end = service.completed ? Date.parse(service.completed.timestamp) : Date.now();
  for (const element of [...states, ...tasks]) {
    if (element.completed) end = Math.max(end, Date.parse(element.completed.timestamp));
  }
  return { start, end: Math.max(end, start + 1) };
}

// Thousands of rows: each view writes its rows as one string of markup (text escaped) and the
// browser parses it once, which costs a fraction of creating the same nodes one call at a time.
// Off-screen rows are laid out and painted only when scrolled to (viewer.css, content-visibility),
// yet they are all in the document: the keyboard, find-in-page and screen readers reach each one.

/** Where an element's bar starts on the service's span, and how long it is (percentages). */
function barPlace(element, range) {
  const begin = Date.parse(element.started?.timestamp) || range.start;
  const finish = element.completed ? Date.parse(element.completed.timestamp) : range.end;
  const total = range.end - range.start;
  return [`${(((begin - range.start) / total) * 100).toFixed(3)}%`, `${Math.max(0.2, ((finish - begin) / total) * 100).toFixed(3)}%`];
}

function rowHtml(kind, element, zone, twisty, extra) {
  const name = `${kind === 'state' ? 'State' : 'Task'} ${element[`${kind}_id`]} · ${element[`${kind}_type`] ?? 'no type'}`;
  const end = element.completed ? formatTime(element.completed.timestamp, zone) : 'no end yet';
  return `<div class="row"><span class="label"><span class="twisty" aria-hidden="true">${twisty}</span>${escapeHtml(name)} `
    + `${statusHtml(element)} ${escapeHtml(`${formatTime(element.started?.timestamp, zone)} → ${end} · ${durationText(element)}${extra}`)}`
    + `</span><span class="track" aria-hidden="true"><span class="bar ${kind}${element.completed ? '' : ' open'}"></span></span></div>`;
}

function itemHtml(kind, element, zone, inner, extra = '') {
  const id = escapeHtml(element[`${kind}_id`]);
  const expanded = inner ? ' aria-expanded="true"' : '';
  return `<li role="treeitem" tabindex="-1" data-kind="${kind}" data-id="${id}" id="${kind}-${id}"${expanded}>`
    + `${rowHtml(kind, element, zone, inner ? '▾' : '', extra)}${inner}</li>`;
}

function buildTree(order, tasksByState, looseTasks, zone, range) {
  const tree = document.createElement('ul');
  tree.setAttribute('role', 'tree');
  tree.id = 'timeline-tree';
  tree.setAttribute('aria-label', 'States in journey order, each with its tasks');
  const parts = [];
  const places = []; // the bars in document order
  const taskItems = (tasks) => tasks.map((task) => {
    places.push(barPlace(task, range));
    return itemHtml('task', task, zone, '');
  }).join('');
  for (const state of order) {
    places.push(barPlace(state, range));
    const tasks = tasksByState.get(state.state_id);
    parts.push(itemHtml('state', state, zone, tasks?.length ? `<ul role="group">${taskItems(tasks)}</ul>` : '',
      state.previous_state_id ? ` · after state ${state.previous_state_id}` : ''));
  }
  if (looseTasks.length) {
    parts.push('<li role="treeitem" tabindex="-1" data-kind="loose" id="loose-tasks" aria-expanded="true"><div class="row">'
      + `<span class="label"><span class="twisty" aria-hidden="true">▾</span>Tasks in no state (${looseTasks.length})</span>`
      + `<span></span></div><ul role="group">${taskItems(looseTasks)}</ul></li>`);
  }
  tree.innerHTML = parts.join('');
  // Bar positions as CSS variables through the CSSOM: the page's CSP allows no style attributes.
  const bars = tree.getElementsByClassName('bar');
  for (let i = 0; i < bars.length; i += 1) {
    bars[i].style.setProperty('--start', places[i][0]);
    bars[i].style.setProperty('--length', places[i][1]);
  }
  const first = tree.querySelector('[role="treeitem"]');
  if (first) first.tabIndex = 0;
  return tree;
}

function visibleItems(tree) {
  return [...tree.querySelectorAll('[role="treeitem"]')].filter((item) => !item.parentElement.closest('[aria-expanded="false"]'));
}

function setExpanded(item, expanded) {
  item.setAttribute('aria-expanded', String(expanded));
  item.querySelector('.twisty').textContent = expanded ? '▾' : '▸';
}

/** WAI-ARIA tree keyboard: arrows move and open/close, Home/End, Enter/Space open the element. */
function bindTree(tree, openItem) {
  const focusItem = (item) => {
    if (!item) return;
    const current = tree.querySelector('[role="treeitem"][tabindex="0"]');
    if (current) current.tabIndex = -1;
    item.tabIndex = 0;
    item.focus();
  };
  tree.addEventListener('keydown', (event) => {
    const item = event.target.closest('[role="treeitem"]');
    if (!item) return;
    const expandable = item.hasAttribute('aria-expanded');
    let handled = true;
    switch (event.key) {
      case 'ArrowDown': case 'ArrowUp': {
        const items = visibleItems(tree);
        const index = items.indexOf(item) + (event.key === 'ArrowDown' ? 1 : -1);
        focusItem(items[Math.max(0, Math.min(items.length - 1, index))]);
        break;
      }
      case 'Home': focusItem(visibleItems(tree)[0]); break;
      case 'End': { const items = visibleItems(tree); focusItem(items[items.length - 1]); break; }
      case 'ArrowRight':
        if (expandable && item.getAttribute('aria-expanded') === 'false') setExpanded(item, true);
        else if (expandable) focusItem(item.querySelector('[role="treeitem"]'));
        break;
      case 'ArrowLeft':
        if (expandable && item.getAttribute('aria-expanded') === 'true') setExpanded(item, false);
        else focusItem(item.parentElement.closest('[role="treeitem"]'));
        break;
      case 'Enter': case ' ':
        if (item.dataset.kind === 'loose') setExpanded(item, item.getAttribute('aria-expanded') !== 'true');
        else openItem(item);
        break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });
  tree.addEventListener('click', (event) => {
    const item = event.target.closest('[role="treeitem"]');
    if (!item) return;
    focusItem(item);
    if (item.dataset.kind === 'loose') setExpanded(item, item.getAttribute('aria-expanded') !== 'true');
    else openItem(item);
  });
}

function elementsTable(order, tasksByState, looseTasks, zone, openElement) {
  const rows = [];
  const row = (kind, element, parent) => {
    const id = escapeHtml(element[`${kind}_id`]);
    rows.push(`<tr><th scope="row"><button type="button" class="link-button" data-kind="${kind}" data-id="${id}">`
      + `${kind === 'state' ? 'State' : 'Task'} ${id}</button></th><td>${escapeHtml(element[`${kind}_type`] ?? '—')}</td>`
      + `<td>${escapeHtml(parent)}</td><td>${statusHtml(element)}</td>`
      + `<td class="time">${escapeHtml(formatTime(element.started?.timestamp, zone))}</td>`
      + `<td class="time">${escapeHtml(formatTime(element.completed?.timestamp, zone))}</td>`
      + `<td>${escapeHtml(durationText(element))}</td>`
      + `<td>${escapeHtml(element.disposition !== undefined ? element.disposition : '—')}</td></tr>`);
  };
  for (const state of order) {
    row('state', state, state.previous_state_id ? `after state ${state.previous_state_id}` : 'first');
    for (const task of tasksByState.get(state.state_id) || []) row('task', task, `in state ${state.state_id}`);
  }
  for (const task of looseTasks) row('task', task, 'in no state');
  const body = document.createElement('tbody');
  body.innerHTML = rows.join('');
  body.addEventListener('click', (event) => {
    const open = event.target.closest('button[data-kind]');
    if (open) openElement(open.dataset.kind, open.dataset.id, open);
  });
  return h('table', { id: 'elements-table' }, h('caption', { text: 'States and tasks in journey order' }),
    h('thead', {}, h('tr', {}, ...['Element', 'Type', 'Where', 'Status', 'Started', 'Ended', 'Duration', 'Disposition']
      .map((name) => h('th', { scope: 'col', text: name })))), body);
}

function tabs(context, panels) {
  const chosen = context.params.get('tab') === 'table' ? 'table' : 'timeline';
  const list = h('div', { role: 'tablist', 'aria-label': 'Views of the journey' });
  const buttons = panels.map(({ key, label, panel }) => {
    const tab = h('button', { type: 'button', role: 'tab', id: `tab-${key}`, 'aria-controls': `panel-${key}`, text: label });
    panel.setAttribute('role', 'tabpanel');
    panel.id = `panel-${key}`;
    panel.setAttribute('aria-labelledby', `tab-${key}`);
    return tab;
  });
  const select = (key, focus, changed = true) => {
    panels.forEach(({ key: k, panel, build }, i) => {
      const on = k === key;
      buttons[i].setAttribute('aria-selected', String(on));
      buttons[i].tabIndex = on ? 0 : -1;
      panel.hidden = !on;
      if (on && build && !panel.dataset.built) { panel.dataset.built = 'true'; build(panel); }
      if (on && focus) buttons[i].focus();
    });
    if (!changed) return;
    // Only when the person changes tabs: the URL already names the first one, and a history entry
    // written right after the tree went in would make chromium lay out the whole page at once.
    const params = new URLSearchParams(window.location.search);
    if (key === 'table') params.set('tab', 'table'); else params.delete('tab');
    window.history.replaceState(null, '', `${window.location.pathname}?${params}`);
    context.params = params;
  };
  buttons.forEach((tab, i) => {
    tab.addEventListener('click', () => select(panels[i].key, false));
    tab.addEventListener('keydown', (event) => {
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: buttons.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      select(panels[(moves[event.key] + buttons.length) % buttons.length].key, true);
    });
    list.append(tab);
  });
  return { list, select: () => select(chosen, false, false) };
}

function serviceFacts(service, states, tasks, zone) {
  const activeStates = states.filter(isActive).length;
  const activeTasks = tasks.filter(isActive).length;
  const rows = [
    ['Status', statusBadge(service)], ['Type', String(service.service_type ?? '—')],
    ['Customer', service.customer_id ?? 'anonymous'], ['Contact key', service.contact_key ?? '—'],
    ['Started', formatTime(service.started?.timestamp, zone)], ['Ended', formatTime(service.completed?.timestamp, zone)],
    ['Duration', durationText(service)], ['Expires', formatTime(service.expiration_time, zone)],
    ['States', `${states.length} (${activeStates} active, ${states.length - activeStates} completed)`],
    ['Tasks', `${tasks.length} (${activeTasks} active, ${tasks.length - activeTasks} completed)`]];
  return h('dl', { class: 'facts', id: 'service-facts' }, rows.flatMap(([name, value]) => [h('dt', { text: name }), h('dd', {}, value)]));
}

export async function show(context) {
  const { params, api, view, zone } = context;
  const serviceId = params.get('service');
  const scope = `Tenant: ${params.get('cc') || 'default'} · Group: ${params.get('group') || 'none'}`;
  document.title = `Service ${serviceId} — Journey viewer`;
  const status = h('div', { id: 'timeline-status', role: 'status' }, h('p', { text: 'Loading the service…' }));
  const heading = h('h2', { text: `Service ${serviceId}` });
  const back = [];
  if (params.get('customer') || params.has('contact_key')) {
    const list = new URLSearchParams(params);
    for (const key of ['service', 'el', 'tab']) list.delete(key);
    const link = h('a', { href: `?${list}`, id: 'back-to-list', text: params.get('customer')
      ? `All services of customer ${params.get('customer')}` : `All anonymous services with contact key ${params.get('contact_key')}` });
    link.addEventListener('click', (event) => { event.preventDefault(); context.navigate(list); });
    back.push(h('p', {}, link));
  }
  view.replaceChildren(heading, h('p', { class: 'summary-line', text: scope }), ...back, status);
  context.focusHeading(); // now, while the view is small: focus makes the browser lay the page out at once

  const sid = encode(serviceId);
  let service;
  let states;
  let tasks;
  try {
    [service, states, tasks] = await Promise.all([
      api.get(`services/${sid}`, { extensions: '*' }).then((r) => r.data),
      api.all(`services/${sid}/states`, { limit: PAGE, extensions: '*' }),
      api.all(`services/${sid}/tasks`, { limit: PAGE, extensions: '*' }),
    ]);
  } catch (error) {
    if (!context.current()) return;
    const text = error.status === 404 ? `No service ${serviceId} here (${scope}). The API says: ${error.message}`
      : error.explain ? error.explain(context.access.role) : String(error);
    status.replaceChildren(h('p', { class: 'message error', id: 'timeline-error', role: 'alert', text }));
    return;
  }
  if (!context.current()) return;
  window.performance.mark('viewer:timeline-data');
  heading.textContent = `Service ${service.service_id} · ${service.service_type ?? 'no type'}`;
  if (!back.length && service.customer_id) {
    const list = new URLSearchParams(params);
    for (const key of ['service', 'el', 'tab']) list.delete(key);
    list.set('customer', service.customer_id);
    const link = h('a', { href: `?${list}`, id: 'back-to-list', text: `All services of customer ${service.customer_id}` });
    link.addEventListener('click', (event) => { event.preventDefault(); context.navigate(list); });
    heading.after(h('p', {}, link));
  }

  const order = journeyOrder(states);
  const tasksByState = new Map();
  const looseTasks = [];
  for (const task of tasks) {
    if (task.state_id) {
      if (!tasksByState.has(task.state_id)) tasksByState.set(task.state_id, []);
      tasksByState.get(task.state_id).push(task);
    } else looseTasks.push(task);
  }
  const range = span(service, states, tasks);
  const find = (kind, id) => (kind === 'service' ? service
    : (kind === 'state' ? states : tasks).find((e) => String(e[`${kind}_id`]) === String(id)));
  const setElementParam = (value) => {
    const next = new URLSearchParams(window.location.search);
    if (value) next.set('el', value); else next.delete('el');
    window.history.replaceState(null, '', `${window.location.pathname}?${next}`);
    context.params = next;
  };
  const openElement = (kind, element, opener) => {
    setElementParam(kind === 'service' ? 'service' : `${kind}:${element[`${kind}_id`]}`);
    const tree = document.getElementById('timeline-tree');
    tree?.querySelector('[aria-selected="true"]')?.removeAttribute('aria-selected');
    if (kind !== 'service') document.getElementById(`${kind}-${element[`${kind}_id`]}`)?.setAttribute('aria-selected', 'true');
    elementView.open(context, service, kind, element, { opener, onClose: () => setElementParam(''),
      after: () => { setElementParam(''); context.rerender(); } });
  };

  const tree = states.length || tasks.length ? buildTree(order, tasksByState, looseTasks, zone, range)
    : h('p', { class: 'message', id: 'timeline-empty', text: 'This service has no states and no tasks yet.' });
  window.performance.mark('viewer:timeline-built');
  if (tree.id === 'timeline-tree') bindTree(tree, (item) => openElement(item.dataset.kind, find(item.dataset.kind, item.dataset.id), item));
  const timelinePanel = h('div', {},
    h('p', { class: 'legend', text: `Bars span the service from ${formatTime(new Date(range.start).toISOString(), zone)} to `
      + `${service.completed ? formatTime(service.completed.timestamp, zone) : 'now (still active)'}; an active element's bar is `
      + 'striped and ends in ▶ (no end yet). Arrow keys move, Enter opens an element.' }),
    tree);
  const tablePanel = h('div', {});
  const { list, select } = tabs(context, [
    { key: 'timeline', label: 'Timeline', panel: timelinePanel },
    { key: 'table', label: 'Table', panel: tablePanel,
      build: (panel) => panel.append(elementsTable(order, tasksByState, looseTasks, zone,
        (kind, id, opener) => openElement(kind, find(kind, id), opener))) }]);

  const details = h('button', { type: 'button', class: 'secondary', id: 'service-details', text: 'Service details and attached data' });
  details.addEventListener('click', () => openElement('service', service, details));
  status.replaceChildren(h('p', { text: `${states.length} states and ${tasks.length} tasks.` }));
  const fragment = document.createDocumentFragment();
  fragment.append(serviceFacts(service, states, tasks, zone),
    h('div', { class: 'actions', id: 'service-actions' }, details, ...actions.buttons(context, service, service, 'service', () => context.rerender())),
    list, timelinePanel, tablePanel);
  select();
  view.append(fragment);
  window.performance.mark('viewer:timeline-drawn');
  if (tree.dataset) tree.dataset.drawn = 'true';

  const wanted = params.get('el');
  if (wanted) {
    const [kind, id] = wanted === 'service' ? ['service', null] : wanted.split(':');
    const element = find(kind, id);
    if (element) openElement(kind, element, document.getElementById(`${kind}-${id}`) || details);
  }
}

// The journey viewer: reads the URL, shows the view it names, and keeps the URL in step with what
// is shown, so a view can be reloaded, bookmarked and shared. One module per view (views/).
import { Access } from './auth.js';
import { Api } from './api.js';
import { localZone } from './format.js';
import * as accessView from './views/access.js';
import * as lookupView from './views/lookup.js';
import * as servicesView from './views/services.js';
import * as timelineView from './views/timeline.js';

const view = document.getElementById('view');
const announcer = document.getElementById('announcer');
let generation = 0;

async function loadConfig() {
  try {
    const response = await fetch('config.json', { cache: 'no-store' });
    if (response.ok) return await response.json();
  } catch { /* fall through: open */ }
  return { sign_in: 'open', region: 'us-east-1' };
}

/** Say something to screen readers (and to the test), without moving focus. */
export function announce(text) {
  announcer.textContent = '';
  window.setTimeout(() => { announcer.textContent = text; }, 30);
}

const config = await loadConfig();
const access = new Access(config);

function currentParams() {
  return new URLSearchParams(window.location.search);
}

/** Show another view: the URL first (history entry), then the view. */
function navigate(params, { replace = false, focus = true } = {}) {
  const search = params.toString();
  const url = `${window.location.pathname}${search ? `?${search}` : ''}`;
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  render({ focus });
}

async function render({ focus = false } = {}) {
  const token = ++generation;
  const params = currentParams();
  const zone = params.get('tz') === 'local' ? 'local' : 'utc';
  lookupView.fill(params);
  document.querySelector(`#zone-switch input[value="${zone}"]`).checked = true;
  const api = new Api(access, { cc: params.get('cc') || '', group: params.get('group') || '' });
  const context = {
    params, api, access, zone, view, announce, navigate,
    current: () => token === generation,
    rerender: () => render({ focus: false }),
    focusHeading: () => {
      const heading = view.querySelector('h2');
      if (focus && heading) { heading.setAttribute('tabindex', '-1'); heading.focus(); }
    },
  };
  if (!access.ready && (params.get('service') || params.get('customer') || params.has('contact_key'))) {
    view.replaceChildren(accessView.notReady(access));
    document.title = 'Sign in — Journey viewer';
    return;
  }
  if (params.get('service')) await timelineView.show(context);
  else if (params.get('customer') || params.has('contact_key')) await servicesView.show(context);
  else {
    document.title = 'Journey viewer — Context Services';
    const intro = document.createElement('p');
    intro.textContent = 'Look up a customer id, a contact key or a service id to see the journey.';
    view.replaceChildren(intro);
  }
}

document.getElementById('local-zone-name').textContent = `Local time (${localZone()})`;
for (const input of document.querySelectorAll('#zone-switch input')) {
  input.addEventListener('change', () => {
    const params = currentParams();
    if (input.value === 'local') params.set('tz', 'local'); else params.delete('tz');
    navigate(params, { replace: true, focus: false });
  });
}
lookupView.bind((params) => navigate(params));
accessView.mount(access, () => render({ focus: false }));
window.addEventListener('popstate', () => render({ focus: true }));
window.journeyViewer = { config, access }; // for people debugging in the console, and the browser tests
await render();
document.documentElement.dataset.ready = 'true';

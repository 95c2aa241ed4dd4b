// What an Administrator may do to a journey: end a service, state or task, change a service's
// expiration, delete a service. Each asks for confirmation in a modal dialog, then calls the
// public route; the API's answer (also a 403, should the role be wrong) is shown in words.
// A Supervisor is offered none of these (the API refuses them anyway).
import { encode } from '../api.js';
import { h, inputToIso, isActive, isoToInput } from '../format.js';

const dialog = document.getElementById('confirm-dialog');

export function allowed(context) {
  return context.access.role === 'Administrator';
}

/** Ask, then act: a modal alert dialog with optional fields; resolves when it closes. */
function confirmThen(context, { title, text, confirm, danger = false, fields = [], run, done }) {
  const opener = document.activeElement;
  const error = h('p', { class: 'message error', id: 'confirm-error', role: 'alert', hidden: true });
  const inputs = fields.map((f) => h('div', { class: 'form-row' }, h('label', { for: f.id, text: f.label }),
    h('input', { id: f.id, type: f.type || 'text', value: f.value || '', step: f.type === 'datetime-local' ? '1' : undefined,
      autocomplete: 'off' })));
  const cancel = h('button', { type: 'button', class: 'secondary', id: 'confirm-cancel', text: 'Cancel' });
  const ok = h('button', { type: 'submit', class: danger ? 'danger' : '', id: 'confirm-ok', text: confirm });
  const form = h('form', { method: 'dialog' }, h('h2', { id: 'confirm-title', text: title }), h('p', { id: 'confirm-text', text }),
    ...inputs, error, h('div', { class: 'actions' }, cancel, ok));
  dialog.replaceChildren(form);
  return new Promise((resolve) => {
    const close = (result) => {
      dialog.close();
      if (opener && document.contains(opener)) opener.focus();
      resolve(result);
    };
    cancel.addEventListener('click', () => close(false));
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); close(false); }, { once: true });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      ok.disabled = true;
      error.hidden = true;
      const values = Object.fromEntries(fields.map((f) => [f.id, form.querySelector(`#${f.id}`).value.trim()]));
      try {
        await run(values);
        close(true);
        context.announce(done);
      } catch (failure) {
        error.textContent = failure.explain ? failure.explain(context.access.role) : String(failure.message || failure);
        error.hidden = false;
        ok.disabled = false;
        error.focus?.();
      }
    });
    dialog.showModal();
    (inputs.length ? form.querySelector('input') : cancel).focus();
  });
}

function endBody(values) {
  const body = {};
  if (values['end-disposition']) body.disposition = values['end-disposition'];
  if (values['end-disposition-desc']) body.disposition_desc = values['end-disposition-desc'];
  return body;
}

const END_FIELDS = [{ id: 'end-disposition', label: 'Disposition (optional)' },
  { id: 'end-disposition-desc', label: 'Disposition description (optional)' }];

/** The action buttons for one element (service, state or task); none for a Supervisor. */
export function buttons(context, service, element, kind, after) {
  if (!allowed(context)) return [];
  const { api } = context;
  const sid = encode(service.service_id);
  const out = [];
  const label = kind === 'service' ? `service ${service.service_id}` : `${kind} ${element[`${kind}_id`]}`;
  if (isActive(element)) {
    const path = kind === 'service' ? `services/${sid}/end`
      : `services/${sid}/${kind}s/${element[`${kind}_id`]}/end`;
    const cascade = kind === 'service' ? ' Its active states and tasks are completed with it.'
      : kind === 'state' ? ' Its active tasks are completed with it.' : '';
    out.push(h('button', { type: 'button', id: `end-${kind}`, text: `End ${kind}`, onclick: async () => {
      const ended = await confirmThen(context, { title: `End ${label}?`, text: `This records the end of ${label} now.${cascade}`,
        confirm: `End ${kind}`, fields: END_FIELDS, done: `Ended ${label}.`,
        run: (values) => api.call('POST', api.url(path), endBody(values)) });
      if (ended) after();
    } }));
  }
  if (kind === 'service') {
    out.push(h('button', { type: 'button', id: 'change-expiration', class: 'secondary', text: 'Change expiration', onclick: async () => {
      const zone = context.zone === 'local' ? 'local time' : 'UTC';
      const changed = await confirmThen(context, { title: `Change the expiration of ${label}?`,
        text: `The conversation (the service with its states and tasks) is erased at this time (${zone}).`,
        confirm: 'Change expiration', done: `Changed the expiration of ${label}.`,
        fields: [{ id: 'new-expiration', label: `Expires at (${zone})`, type: 'datetime-local',
          value: isoToInput(service.expiration_time, context.zone) }],
        run: (values) => {
          const iso = inputToIso(values['new-expiration'], context.zone);
          if (!iso) throw new Error('Enter the date and time the conversation should expire.');
          return api.call('PUT', api.url(`services/${sid}`), { expiration_time: iso });
        } });
      if (changed) after();
    } }));
    out.push(h('button', { type: 'button', id: 'delete-service', class: 'danger', text: 'Delete service', onclick: async () => {
      const deleted = await confirmThen(context, { title: `Delete ${label}?`, danger: true,
        text: `This erases ${label} with all its states, tasks and attached data. It cannot be undone.`,
        confirm: 'Delete service', done: `Deleted ${label}.`,
        run: () => api.call('DELETE', api.url(`services/${sid}`)) });
      if (deleted) {
        const next = new URLSearchParams(context.params);
        next.delete('service');
        next.delete('el');
        next.delete('tab');
        context.navigate(next);
      }
    } }));
  }
  return out;
}

// The header's access panel: who calls the API, and the role whose controls are shown.
// Deployed with the user pool: a sign-in form (the role is the person's Cognito group).
// Otherwise: the credentials the mode needs (none, a principal name, or AWS keys) and a choice
// of role; the API enforces the real one either way.
import { ROLES } from '../auth.js';
import { h } from '../format.js';

const summary = document.getElementById('access-summary');
const controls = document.getElementById('access-controls');

function roleChoice(access, changed) {
  const select = h('select', { id: 'role-choice' },
    ROLES.map((role) => h('option', { value: role, text: role, selected: access.role === role })));
  select.addEventListener('change', () => { access.setRole(select.value); changed(); });
  return h('div', { class: 'field' }, h('label', { for: 'role-choice', text: 'Show the controls of' }), select);
}

function field(id, label, attributes = {}) {
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), h('input', { id, autocomplete: 'off', ...attributes }));
}

function principalForm(access, changed) {
  const form = h('form', { id: 'principal-form' },
    field('principal-name', 'Principal (X-CS-Principal)', { value: access.principal }),
    h('button', { type: 'submit', text: 'Use principal' }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    access.setPrincipal(form.querySelector('#principal-name').value);
    changed();
  });
  return form;
}

function keysForm(access, changed) {
  const saved = access.state.credentials || {};
  const form = h('form', { id: 'keys-form' },
    field('access-key-id', 'Access key id', { value: saved.accessKeyId || '' }),
    field('secret-access-key', 'Secret access key', { type: 'password', value: saved.secretAccessKey || '' }),
    field('session-token', 'Session token (optional)', { type: 'password', value: saved.sessionToken || '' }),
    h('button', { type: 'submit', text: 'Use these credentials' }));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    access.setKeys(form.querySelector('#access-key-id').value, form.querySelector('#secret-access-key').value,
      form.querySelector('#session-token').value);
    changed();
  });
  return form;
}

function cognitoForm(access, changed) {
  if (access.state.username) {
    return h('button', { type: 'button', id: 'sign-out', class: 'secondary', text: 'Sign out',
      onclick: () => { access.signOut(); changed(); } });
  }
  const error = h('p', { id: 'sign-in-error', class: 'message error', role: 'alert', hidden: true });
  const form = h('form', { id: 'sign-in-form' },
    field('sign-in-user', 'User name', { autocomplete: 'username' }),
    field('sign-in-password', 'Password', { type: 'password', autocomplete: 'current-password' }),
    h('button', { type: 'submit', text: 'Sign in' }), error);
  let newPassword = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      const password = form.querySelector('#sign-in-password').value;
      const result = newPassword ? await access.setNewPassword(password)
        : await access.signIn(form.querySelector('#sign-in-user').value.trim(), password);
      if (result.challenge === 'NEW_PASSWORD_REQUIRED') {
        newPassword = true;
        form.querySelector('label[for="sign-in-password"]').textContent = 'Choose a new password';
        form.querySelector('#sign-in-password').value = '';
        form.querySelector('#sign-in-password').setAttribute('autocomplete', 'new-password');
        form.querySelector('button').textContent = 'Set password and sign in';
        form.querySelector('#sign-in-password').focus();
        return;
      }
      changed();
    } catch (failure) {
      error.textContent = `Sign-in failed: ${failure.message}`;
      error.hidden = false;
    }
  });
  return form;
}

export function mount(access, rerender) {
  const draw = () => {
    summary.textContent = access.describe();
    const parts = [];
    if (access.mode === 'principal') parts.push(principalForm(access, changed));
    if (access.mode === 'sigv4' || access.mode === 'keys') parts.push(keysForm(access, changed));
    if (access.mode === 'cognito') parts.push(cognitoForm(access, changed));
    if (access.canChangeRole) parts.push(roleChoice(access, changed));
    controls.replaceChildren(...parts);
  };
  const changed = () => { draw(); rerender(); };
  draw();
}

/** What the page says instead of a view when it cannot call the API yet. */
export function notReady(access) {
  const text = {
    principal: 'Name the principal to call the API as (in the header above), then look up again.',
    cognito: 'Sign in (in the header above) to see journeys.',
  }[access.mode] || 'Give the AWS credentials to sign requests with (in the header above).';
  return h('div', {}, h('h2', { text: 'Sign in first' }), h('p', { class: 'message', text }));
}

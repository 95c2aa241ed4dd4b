// The look-up form: what to look up (customer id, contact key or service id) and in which tenant
// and group. Submitting puts the look-up in the URL; the URL fills the form back on reload.
const form = document.getElementById('lookup');
const valueInput = document.getElementById('lookup-value');
const valueLabel = document.getElementById('lookup-value-label');
const LABELS = { customer: 'Customer id', contact_key: 'Contact key', service: 'Service id' };

function kind() {
  return form.querySelector('input[name="kind"]:checked').value;
}

function relabel() {
  valueLabel.textContent = LABELS[kind()];
}

export function fill(params) {
  let chosen = 'customer';
  if (params.get('service') && !params.get('customer') && !params.has('contact_key')) chosen = 'service';
  else if (params.has('contact_key')) chosen = 'contact_key';
  const typing = document.activeElement;
  if (typing && form.contains(typing) && typing.tagName === 'INPUT' && typing.type !== 'radio') return; // never under the person's hands
  form.querySelector(`input[name="kind"][value="${chosen}"]`).checked = true;
  valueInput.value = params.get(chosen) || '';
  document.getElementById('lookup-cc').value = params.get('cc') || '';
  document.getElementById('lookup-group').value = params.get('group') || '';
  relabel();
}

export function bind(navigate) {
  for (const radio of form.querySelectorAll('input[name="kind"]')) radio.addEventListener('change', relabel);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = valueInput.value.trim();
    if (!value) {
      valueInput.setAttribute('aria-invalid', 'true');
      valueInput.setAttribute('aria-describedby', 'lookup-error');
      let error = document.getElementById('lookup-error');
      if (!error) {
        error = document.createElement('p');
        error.id = 'lookup-error';
        error.className = 'message error';
        form.append(error);
      }
      error.textContent = `Enter a ${LABELS[kind()].toLowerCase()} to look up.`;
      valueInput.focus();
      return;
    }
    valueInput.removeAttribute('aria-invalid');
    document.getElementById('lookup-error')?.remove();
    const current = new URLSearchParams(window.location.search);
    const params = new URLSearchParams();
    const cc = document.getElementById('lookup-cc').value.trim();
    const group = document.getElementById('lookup-group').value.trim();
    if (cc) params.set('cc', cc);
    if (group) params.set('group', group);
    params.set(kind(), value);
    if (current.get('tz')) params.set('tz', current.get('tz'));
    window.performance.mark('viewer:lookup');
    navigate(params);
  });
}

// Studies page: a coordinator's phase choice is saved as soon as it is picked (the form
// posts itself; without JavaScript its "set" button does).
for (const select of document.querySelectorAll('form.phase-form select[name=phase]')) {
  select.addEventListener('change', () => select.form.submit());
}

// Reader worklist page: the cases of one reader study in this reader's order, with
// progress (n of N lesions called and locked) and a link to the next case to read.
import { annotations } from './api.js';

const root = document.getElementById('worklist');
const body = root.querySelector('tbody');
const summary = root.querySelector('.worklist-summary');
const errorLine = root.querySelector('.worklist-error');

function cell(text, className = '') {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function caseState(c) {
  if (!c.n_lesions) return 'no lesions yet';
  if (c.n_locked >= c.n_lesions) return 'done';
  if (c.n_called > 0) return 'in progress';
  return 'to read';
}

function render(worklist) {
  const cases = worklist.cases || [];
  body.replaceChildren(
    ...cases.map((c) => {
      const row = document.createElement('tr');
      row.className = `case state-${caseState(c).replace(/ /g, '-')}`;
      row.dataset.study = c.study_instance_uid;
      const link = document.createElement('a');
      link.href = c.case_url;
      link.textContent = 'open';
      const open = cell('');
      open.append(link);
      row.append(
        cell(String(c.position)),
        cell(c.patient_id || ''),
        cell(`${c.n_called} of ${c.n_lesions} lesions called`, 'progress'),
        cell(`${c.n_locked} locked`),
        cell(caseState(c), 'state'),
        open,
      );
      return row;
    }),
  );
  const lesions = cases.reduce((n, c) => n + (c.n_lesions || 0), 0);
  const locked = cases.reduce((n, c) => n + (c.n_locked || 0), 0);
  const done = cases.filter((c) => caseState(c) === 'done').length;
  summary.textContent = `${done} of ${cases.length} cases done; ${locked} of ${lesions} lesions locked.`;
  const next = cases.find((c) => caseState(c) !== 'done') || cases[0];
  const nextLink = root.querySelector('a.next-case');
  if (next) {
    nextLink.href = next.case_url;
    nextLink.hidden = false;
  }
}

annotations
  .worklist(root.dataset.readerStudy)
  .then(render)
  .catch((error) => {
    errorLine.textContent = `The worklist could not be loaded: ${error.message}`;
    errorLine.hidden = false;
  });

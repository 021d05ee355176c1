// Upload page: drag and drop of files, folders and zip archives; one progress bar per
// upload and a result table per file (stored / duplicate / rejected + reason).
import { uploadWithProgress } from './api.js';

const form = document.getElementById('upload-form');
const dropZone = document.getElementById('drop-zone');
const results = document.getElementById('uploads');

async function filesFromEntry(entry, prefix = '') {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    return [{ file, name: prefix + file.name }];
  }
  const reader = entry.createReader();
  const files = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) files.push(...(await filesFromEntry(child, `${prefix}${entry.name}/`)));
  }
  return files;
}

async function filesFromDrop(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ file, name: file.name }));
  const nested = await Promise.all(entries.map((entry) => filesFromEntry(entry)));
  return nested.flat();
}

function element(tag, attributes = {}, text = '') {
  const node = document.createElement(tag);
  Object.assign(node, attributes);
  if (text) node.textContent = text;
  return node;
}

function renderReport(container, report) {
  const summary = element(
    'p',
    { className: `summary status-${report.status}` },
    report.status === 'rejected'
      ? `Rejected: nothing was stored (${report.rejected} file(s) refused).`
      : `${report.stored} stored, ${report.duplicate} duplicate(s), ${report.skipped || 0} skipped.`,
  );
  const table = element('table', { className: 'grid report' });
  table.append(element('thead'));
  table.tHead.append(element('tr'));
  for (const heading of ['File', 'Result', 'Reason']) table.tHead.rows[0].append(element('th', {}, heading));
  const body = table.createTBody();
  for (const row of report.files || []) {
    const tr = body.insertRow();
    tr.className = `file-${row.status.replace(' ', '-')}`;
    tr.append(element('td', {}, row.file), element('td', {}, row.status), element('td', {}, row.reason || ''));
  }
  container.append(summary, table);
}

async function upload(entries) {
  if (!entries.length) return;
  const box = element('section', { className: 'upload' });
  const title = element('h3', {}, `${entries.length} file(s)`);
  const bar = element('progress', { max: 1, value: 0 });
  box.append(title, bar);
  results.prepend(box);
  const data = new FormData();
  for (const { file, name } of entries) data.append('files', file, name);
  data.append('deidentify', document.getElementById('deidentify').checked ? 'true' : 'false');
  data.append('channel', 'browser');
  try {
    const { status, data: report } = await uploadWithProgress(form.dataset.endpoint, data, (f) => {
      bar.value = f;
    });
    bar.value = 1;
    if (report?.files) renderReport(box, report);
    else
      box.append(
        element(
          'p',
          { className: 'error' },
          `Upload failed (${status}): ${report.detail || report.error || JSON.stringify(report)}`,
        ),
      );
  } catch (error) {
    box.append(element('p', { className: 'error' }, error.message));
  }
}

dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('over');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('over'));
dropZone.addEventListener('drop', async (event) => {
  event.preventDefault();
  dropZone.classList.remove('over');
  upload(await filesFromDrop(event.dataTransfer));
});
for (const id of ['file-input', 'folder-input']) {
  document.getElementById(id).addEventListener('change', (event) => {
    upload([...event.target.files].map((file) => ({ file, name: file.webkitRelativePath || file.name })));
    event.target.value = '';
  });
}

// Models page: start training runs, watch their progress (bars per fold and epoch, loss and
// validation-AUC curves), cancel them, and activate model versions. Refreshes every 2 s.
import { listOf, training } from './api.js';

const REFRESH_MS = 2000;
const SVG_NS = 'http://www.w3.org/2000/svg';
const FOLD_COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#111827'];

const form = document.getElementById('start-form');
const experimentSelect = document.getElementById('experiment');
const message = document.getElementById('start-message');

/** An element with attributes (``class`` sets the class name) and children (nodes or text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child ?? ''));
  }
  return node;
}

const fmt = (v) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(3));

function showVariants() {
  const box = document.getElementById('variants');
  for (const label of box.querySelectorAll('label')) label.remove();
  for (const variant of experimentSelect.selectedOptions[0].dataset.variants.split(',')) {
    const input = el('input', { type: 'checkbox', name: 'variant', value: variant });
    input.checked = variant === 'CM';
    box.append(el('label', {}, input, ` ${variant} `));
  }
}

async function startRuns(event) {
  event.preventDefault();
  const variants = [...form.querySelectorAll('[name=variant]:checked')].map((n) => n.value);
  const epochs = document.getElementById('epochs').value;
  const overrides = epochs ? { epochs: Number(epochs) } : {};
  try {
    for (const variant of variants) {
      await training.start({ experiment: experimentSelect.value, variant, overrides });
    }
    message.textContent = `queued ${variants.length} run(s)`;
    refresh();
  } catch (error) {
    message.textContent = `not started: ${error.message}`;
  }
}

/** A progress bar with its label; the width goes through the CSSOM, which the CSP allows. */
function bar(fraction, label, extra = '') {
  const fill = el('span');
  fill.style.width = `${Math.round(100 * Math.min(1, fraction || 0))}%`;
  return el('div', {}, el('div', { class: `bar ${extra}` }, fill), el('span', { class: 'muted' }, label));
}

/** One polyline per fold: loss (solid) and validation AUC (dashed), epochs on x. */
function curves(history) {
  const w = 260;
  const h = 90;
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('width', w);
  svg.setAttribute('height', h);
  if (!history.length) return svg;
  const maxEpoch = Math.max(...history.map((p) => p.epoch));
  const maxLoss = Math.max(1e-6, ...history.map((p) => p.loss || 0));
  const folds = [...new Set(history.map((p) => String(p.fold)))];
  const x = (p) => 4 + (w - 8) * (maxEpoch > 1 ? (p.epoch - 1) / (maxEpoch - 1) : 0.5);
  const series = [
    ['loss', (v) => h - 4 - ((h - 8) * v) / maxLoss, ''],
    ['val_auc', (v) => h - 4 - (h - 8) * v, '3,2'],
  ];
  folds.forEach((fold, i) => {
    const points = history.filter((p) => String(p.fold) === fold);
    for (const [key, y, dash] of series) {
      const usable = points.filter((p) => p[key] !== null && p[key] !== undefined);
      if (!usable.length) continue;
      const line = document.createElementNS(SVG_NS, 'polyline');
      line.setAttribute('points', usable.map((p) => `${x(p)},${y(p[key])}`).join(' '));
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', FOLD_COLOURS[i % FOLD_COLOURS.length]);
      if (dash) line.setAttribute('stroke-dasharray', dash);
      svg.append(line);
    }
  });
  return svg;
}

function progressCell(p) {
  const folds = p.folds || 0;
  const epochs = p.epochs || 1;
  const cell = el('td');
  for (const stage of ['patches', 'features']) {
    if (p.stage !== stage) continue;
    const done = p[`${stage}_done`] || 0;
    const total = p[`${stage}_total`];
    cell.append(bar(done / (total || 1), `${stage} ${done}/${total || '?'}`));
  }
  for (let f = 1; f <= folds; f++) {
    let done;
    if (p.fold === null || p.fold === undefined) done = ['final', 'done'].includes(p.stage) ? epochs : 0;
    else done = f < p.fold ? epochs : f === p.fold ? p.epoch : 0;
    const auc = p.fold_auc?.[String(f)];
    const aucText = auc !== undefined ? ` · AUC ${fmt(auc)}` : '';
    cell.append(bar(done / epochs, `fold ${f}: epoch ${done}/${epochs}${aucText}`));
  }
  const finalDone = p.stage === 'done' ? epochs : p.stage === 'final' ? p.epoch : 0;
  cell.append(bar(finalDone / epochs, `final model: epoch ${finalDone}/${epochs}`, 'final'));
  return cell;
}

function renderRun(run) {
  const p = run.progress || {};
  const actions = el('td');
  if (['queued', 'running'].includes(run.state) && !run.cancel_requested) {
    const button = el('button', { type: 'button' }, 'Cancel');
    button.addEventListener('click', () => training.cancel(run.id).then(refresh));
    actions.append(button);
  }
  const log = run.log + (run.error ? `\n${run.error}` : '');
  const details = el('details', {}, el('summary', {}, 'log'), el('pre', {}, log));
  const state = run.state + (run.cancel_requested && run.state === 'running' ? ' (cancelling)' : '');
  return el(
    'tr',
    {},
    el(
      'td',
      {},
      `#${run.id} ${run.experiment_name}`,
      el('br'),
      el('span', { class: 'muted' }, `${run.created_by || ''} ${run.device || ''}`),
    ),
    el('td', {}, run.variant),
    el('td', { class: `state-${run.state}` }, state),
    progressCell(p),
    el(
      'td',
      { class: 'curves' },
      curves(p.history || []),
      el('div', { class: 'muted' }, `loss ${fmt(p.loss)}`),
      details,
    ),
    actions,
  );
}

function renderVersion(v) {
  const cell = el('td');
  if (v.is_active) cell.append('active');
  else {
    const button = el('button', { type: 'button' }, 'Activate');
    button.addEventListener('click', () => training.activate(v.id).then(refresh));
    cell.append(button);
  }
  const m = v.metrics || {};
  return el(
    'tr',
    {},
    el(
      'td',
      {},
      `${v.experiment_name}/${v.variant} v${v.version}`,
      el('br'),
      el('span', { class: 'muted' }, `trained on ${v.trained_on}`),
    ),
    el('td', {}, (v.phases || []).join('+')),
    el('td', {}, fmt(m.oof_auc)),
    el(
      'td',
      {},
      Object.entries(m.fold_auc || {})
        .map(([f, a]) => `${f}: ${fmt(a)}`)
        .join(', '),
    ),
    el('td', {}, `${m.n_lesions ?? '?'} (${m.n_malignant ?? '?'} malignant)`),
    cell,
  );
}

async function refresh() {
  try {
    const runs = await training.runs();
    document.getElementById('runs').replaceChildren(...listOf(runs).map(renderRun));
    const versions = await training.versions();
    document.getElementById('versions').replaceChildren(...listOf(versions).map(renderVersion));
  } catch (error) {
    message.textContent = `could not refresh: ${error.message}`;
  }
}

experimentSelect.addEventListener('change', showVariants);
form.addEventListener('submit', startRuns);
showVariants();
refresh();
setInterval(refresh, REFRESH_MS);

// The lesions of the open case and their ROIs: the lesion selector and "new lesion",
// the lesion's side / location / long axis, ROI statistics per phase, and keeping the
// drawn annotations and the API's ROI records in step (create, update, delete, restore).
import { annotations, listOf } from './api.js';
import { Saver } from './saving.js';
import { get, set, subscribe } from './state.js';
import { annotationRecord, getAnnotation, removeAnnotationQuietly, restoreAnnotation } from './tools.js';
import { imageIdFor } from './viewer.js';
import { PHASES } from './vocabulary.js';

const fmt = (value, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// Statistics are recomputed whenever an ROI is drawn again (on every opening of the case),
// from the stored points rounded to 0.001 mm: differences of that order are no change.
const STATS_TOLERANCE = 1e-3;

/** True when ``record`` (points, stats) is what was saved: the same points and the same statistics up to recomputation. */
function isSaved(record, saved) {
  if (!saved || JSON.stringify(record.points) !== JSON.stringify(saved.points)) return false;
  return Object.entries(record.stats).every(([name, value]) => {
    const stored = saved.stats[name];
    return Number.isFinite(stored) && Math.abs(stored - value) <= STATS_TOLERANCE * Math.max(1, Math.abs(value));
  });
}

/** A one-line summary of an ROI's statistics: mean ± SD HU and area, or the length. */
export function describeStats(roi) {
  const s = roi.stats || {};
  if (roi.tool === 'length') return `length ${fmt(s.length)} mm`;
  return `mean ${fmt(s.mean)} ± ${fmt(s.stdDev)} HU, area ${fmt(s.area)} mm²`;
}

/**
 * Publish what an answer of the lesions API says about each lesion's pathology and reading
 * schedule (state ``pathology`` and ``readings``); a lesion whose answer leaves one out keeps
 * what was shown before.
 */
export function publishPathologyAndReadings(lesions) {
  const pathology = new Map(get('pathology'));
  const readings = new Map(get('readings'));
  for (const lesion of lesions) {
    if ('pathology' in lesion) pathology.set(lesion.id, lesion.pathology);
    if ('reading' in lesion) readings.set(lesion.id, lesion.reading);
  }
  set('readings', readings);
  set('pathology', pathology);
}

/** The lesion list and fields of the case; the selected lesion is state ``selectedLesion``. */
export class LesionPanel {
  constructor(root, { viewer, studyInstanceUID, readerStudyId }) {
    this.root = root;
    this.viewer = viewer;
    this.studyInstanceUID = studyInstanceUID;
    this.readerStudyId = readerStudyId;
    this.lesions = [];
    this.entries = new Map(); // annotationUID -> {roiId, lesionId, saved}
    this.savers = new Map();
    this.creatingLesion = null;
    this.list = root.querySelector('.lesion-list');
    this.roiStatus = root.querySelector('.roi-status');
    this.fields = root.querySelector('form.lesion-fields');
    this.fieldSaver = new Saver({
      save: () => this.saveFields(),
      status: this.fields.querySelector('.save-status'),
      label: 'Lesion ',
    });
    this.fields.addEventListener('change', () => this.fieldSaver.schedule());
    this.fields.addEventListener('submit', (event) => event.preventDefault());
    root
      .querySelector('button.new-lesion')
      .addEventListener('click', () => this.newLesion().catch((e) => this.showError(e)));
    this.errorLine = root.querySelector('.lesion-error');
    subscribe('selectedLesion', () => this.render());
    subscribe('callBadges', () => this.renderList());
    subscribe('pathology', () => this.renderList());
  }

  get selected() {
    return get('selectedLesion') ?? null;
  }

  showError(error) {
    this.errorLine.textContent = error ? error.message : '';
    this.errorLine.hidden = !error;
  }

  /** Load the case's lesions, draw their saved ROIs and select the first lesion. */
  async load() {
    const data = await annotations.lesions(this.studyInstanceUID, this.readerStudyId);
    this.lesions = listOf(data);
    for (const lesion of this.lesions) {
      for (const roi of lesion.rois || []) this.restoreRoi(lesion, roi);
    }
    publishPathologyAndReadings(this.lesions);
    set('selectedLesion', this.lesions[0] ?? null);
  }

  restoreRoi(lesion, roi) {
    const panel = this.viewer.panel(roi.phase);
    if (!panel?.imageIds.length) return;
    const imageId = imageIdFor(roi.sop_instance_uid, roi.frame_number || 1);
    const annotationUID = restoreAnnotation(panel.viewportId, roi, imageId);
    if (!annotationUID) return;
    this.entries.set(annotationUID, {
      roiId: roi.id,
      lesionId: lesion.id,
      saved: { points: roi.points, stats: roi.stats || {} },
    });
  }

  select(lesionId) {
    set('selectedLesion', this.lesions.find((l) => l.id === lesionId) ?? null);
  }

  nextLabel() {
    const numbers = this.lesions.map((l) => Number((l.label.match(/^L(\d+)$/) || [])[1] || 0));
    return `L${Math.max(0, ...numbers) + 1}`;
  }

  async newLesion() {
    const lesion = await annotations.createLesion({
      study: this.studyInstanceUID,
      label: this.nextLabel(),
      side: 'unknown',
      location: '',
    });
    lesion.rois = lesion.rois || [];
    this.lesions.push(lesion);
    publishPathologyAndReadings([lesion]);
    this.showError(null);
    this.select(lesion.id);
    return lesion;
  }

  /** The lesion new ROIs go to: the selected one, or "L1" created now when the case has none. */
  async ensureLesion() {
    if (this.selected) return this.selected;
    if (!this.creatingLesion) {
      this.creatingLesion = this.newLesion().finally(() => {
        this.creatingLesion = null;
      });
    }
    return this.creatingLesion;
  }

  // --- annotations <-> ROI records -------------------------------------------------

  onCompleted(annotation) {
    const uid = annotation.annotationUID;
    if (!this.entries.has(uid))
      this.entries.set(uid, { roiId: null, lesionId: this.selected?.id ?? null, saved: null });
    const record = annotationRecord(annotation);
    // A freehand contour's statistics are computed on its first render, just after it is
    // completed: save once they are there (the modified event that follows reschedules).
    if (record && record.tool !== 'length' && !Object.keys(record.stats).length) this.saverFor(uid).schedule();
    else
      this.saverFor(uid)
        .flush()
        .catch(() => {});
  }

  onModified(annotation) {
    const entry = this.entries.get(annotation.annotationUID);
    if (!entry) return; // still being drawn: saved when completed
    const record = annotationRecord(annotation);
    if (!record || isSaved(record, entry.saved)) return;
    this.saverFor(annotation.annotationUID).schedule();
  }

  onRemoved(annotation) {
    const entry = this.entries.get(annotation.annotationUID);
    this.entries.delete(annotation.annotationUID);
    if (entry?.roiId) this.deleteRoi(entry.roiId).catch((error) => this.showError(error));
  }

  saverFor(annotationUID) {
    if (!this.savers.has(annotationUID)) {
      this.savers.set(
        annotationUID,
        new Saver({
          save: () => this.persist(annotationUID),
          status: this.roiStatus,
          label: 'ROI ',
          delayMs: 600,
        }),
      );
    }
    return this.savers.get(annotationUID);
  }

  async persist(annotationUID) {
    const annotation = getAnnotation(annotationUID);
    const entry = this.entries.get(annotationUID);
    if (!annotation || !entry) return null;
    const record = annotationRecord(annotation);
    const panel = this.viewer.panelForImageId(record.imageId);
    const instance = panel?.instanceAt(record.imageId);
    if (!instance) throw new Error('the ROI is not on an image of this case');
    if (!entry.lesionId || !this.lesions.some((l) => l.id === entry.lesionId))
      entry.lesionId = (await this.ensureLesion()).id;
    const lesion = this.lesions.find((l) => l.id === entry.lesionId);
    const body = {
      lesion: lesion.id,
      series: panel.series.series_instance_uid,
      sop_instance_uid: instance.sop_instance_uid,
      frame_number: 1,
      tool: record.tool,
      points: record.points,
      stats: record.stats,
      is_reference: record.tool !== 'length',
    };
    let roi;
    if (entry.roiId) {
      roi = await annotations.updateRoi(entry.roiId, body);
    } else {
      // One reference ROI (and one length) per lesion and phase: a new drawing replaces it.
      const replaced = (lesion.rois || []).find(
        (r) => r.phase === panel.phase && (record.tool === 'length' ? r.tool === 'length' : r.is_reference),
      );
      roi = replaced ? await annotations.updateRoi(replaced.id, body) : await annotations.createRoi(body);
      if (replaced) this.forgetAnnotationsOf(replaced.id, annotationUID);
      entry.roiId = roi.id;
    }
    entry.saved = { points: record.points, stats: record.stats };
    lesion.rois = [...(lesion.rois || []).filter((r) => r.id !== roi.id), roi];
    if (record.tool === 'length' && Number.isFinite(record.stats.length)) {
      const updated = await annotations.updateLesion(lesion.id, {
        long_axis_mm: Math.round(record.stats.length * 10) / 10,
      });
      Object.assign(lesion, updated, { rois: lesion.rois });
      publishPathologyAndReadings([updated]);
    }
    this.showError(null);
    this.render();
    return roi;
  }

  forgetAnnotationsOf(roiId, keepUID) {
    for (const [uid, entry] of this.entries) {
      if (entry.roiId === roiId && uid !== keepUID) {
        this.entries.delete(uid);
        removeAnnotationQuietly(
          uid,
          this.viewer.panels.map((p) => p.viewportId),
        );
      }
    }
  }

  async deleteRoi(roiId) {
    await annotations.deleteRoi(roiId);
    for (const lesion of this.lesions) lesion.rois = (lesion.rois || []).filter((r) => r.id !== roiId);
    this.forgetAnnotationsOf(roiId, null);
    this.render();
  }

  // --- lesion fields -----------------------------------------------------------------

  async saveFields() {
    const lesion = this.selected;
    if (!lesion) return null;
    const f = this.fields.elements;
    const longAxis = f.long_axis_mm.value === '' ? null : Number(f.long_axis_mm.value);
    const updated = await annotations.updateLesion(lesion.id, {
      side: f.side.value,
      location: f.location.value,
      long_axis_mm: longAxis,
    });
    Object.assign(lesion, updated, { rois: lesion.rois });
    this.renderList();
    return updated;
  }

  fillFields() {
    const lesion = this.selected;
    this.fields.hidden = !lesion;
    if (!lesion) return;
    const f = this.fields.elements;
    this.fields.querySelector('.lesion-label').textContent = lesion.label;
    f.side.value = lesion.side || 'unknown';
    f.location.value = lesion.location || '';
    f.long_axis_mm.value = lesion.long_axis_mm ?? '';
  }

  // --- rendering ---------------------------------------------------------------------

  render() {
    this.renderList();
    this.fillFields();
  }

  renderList() {
    const items = this.lesions.map((lesion) => this.renderLesion(lesion));
    if (!items.length)
      items.push(
        element('li', { className: 'empty' }, 'No lesion yet: draw an ROI (lesion L1 is created) or add a lesion.'),
      );
    this.list.replaceChildren(...items);
  }

  renderLesion(lesion) {
    const rois = [...(lesion.rois || [])].sort((a, b) => PHASES.indexOf(a.phase) - PHASES.indexOf(b.phase));
    const rows = rois.map((roi) =>
      element(
        'tr',
        { className: 'roi', dataset: { roiId: roi.id, phase: roi.phase, tool: roi.tool } },
        element('td', { className: 'phase' }, roi.phase),
        element('td', {}, roi.tool),
        element('td', { className: 'stats' }, describeStats(roi)),
        element(
          'td',
          { className: 'actions' },
          element(
            'button',
            {
              type: 'button',
              className: 'goto',
              title: 'show this slice',
              onclick: () => this.viewer.showImage(roi.phase, imageIdFor(roi.sop_instance_uid, roi.frame_number || 1)),
            },
            'show',
          ),
          element(
            'button',
            {
              type: 'button',
              className: 'delete',
              title: 'delete this ROI',
              onclick: () => this.confirmDelete(lesion, roi),
            },
            '×',
          ),
        ),
      ),
    );
    const shown = get('pathology')?.get(lesion.id);
    const pathology = shown
      ? element(
          'p',
          { className: 'pathology-view' },
          `Pathology: ${shown.subtype} (${shown.malignant ? 'malignant' : 'benign'}, ${shown.source})`,
        )
      : null;
    const badge = get('callBadges')?.get(lesion.id);
    return element(
      'li',
      {
        className: `lesion${lesion.id === this.selected?.id ? ' selected' : ''}`,
        dataset: { lesionId: lesion.id, label: lesion.label },
      },
      element(
        'div',
        { className: 'lesion-head' },
        element(
          'button',
          { type: 'button', className: 'select-lesion', onclick: () => this.select(lesion.id) },
          lesion.label,
        ),
        element(
          'span',
          { className: 'muted' },
          `${lesion.side || 'unknown'}${lesion.location ? `, ${lesion.location}` : ''}${lesion.long_axis_mm ? `, ${fmt(lesion.long_axis_mm)} mm` : ''}`,
        ),
        badge ? element('span', { className: 'call-badge' }, badge) : null,
      ),
      rows.length
        ? element('table', { className: 'roi-stats' }, element('tbody', {}, ...rows))
        : element('p', { className: 'muted' }, 'No ROI yet.'),
      pathology,
    );
  }

  confirmDelete(lesion, roi) {
    if (!window.confirm(`Delete the ${roi.phase} ${roi.tool} ROI of ${lesion.label}?`)) return;
    this.deleteRoi(roi.id).catch((error) => this.showError(error));
  }
}

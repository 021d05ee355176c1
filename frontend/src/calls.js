// The reader's call on the selected lesion (benign/malignant, probability 0-100, optional
// subtype guess): autosaved while typing, locked on submit after a confirmation, with
// the time spent measured while the page is visible. And the coordinator's pathology
// form (ground truth) for the selected lesion.
import { ApiError, annotations } from './api.js';
import { Saver } from './saving.js';
import { isMalignant } from './vocabulary.js';

/** Seconds of visible time per lesion, counted only while that lesion's form is shown. */
class TimeSpent {
  constructor() {
    this.seconds = new Map();
    this.lesionId = null;
    this.since = null;
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) this.pause();
      else this.resume();
    });
  }

  pause() {
    if (this.lesionId !== null && this.since !== null) {
      const spent = (performance.now() - this.since) / 1000;
      this.seconds.set(this.lesionId, (this.seconds.get(this.lesionId) || 0) + spent);
    }
    this.since = null;
  }

  resume() {
    if (this.lesionId !== null && !document.hidden) this.since = performance.now();
  }

  show(lesionId) {
    this.pause();
    this.lesionId = lesionId;
    this.resume();
  }

  total(lesionId) {
    const running = lesionId === this.lesionId && this.since !== null ? (performance.now() - this.since) / 1000 : 0;
    return (this.seconds.get(lesionId) || 0) + running;
  }
}

/** The reader's call form of one reading session (``unaided``, or ``aided`` after the unaided lock);
 * ``setLesion(lesion, call)`` shows one lesion's current call of that session. */
export class CallForm {
  constructor(form, { readerStudyId, session = 'unaided', onLocked = () => {}, onSaved = () => {} }) {
    this.form = form;
    this.readerStudyId = Number(readerStudyId);
    this.session = session;
    this.onLocked = onLocked;
    this.onSavedCallback = onSaved;
    this.lesion = null;
    this.calls = new Map();
    this.drafts = new Map();
    this.previousSeconds = new Map();
    this.time = new TimeSpent();
    this.status = form.querySelector('.save-status');
    this.saver = new Saver({
      save: () => this.saveOnce(),
      status: this.status,
      onSaved: (call) => this.remember(call),
    });
    form.addEventListener('input', () => this.changed());
    form.addEventListener('change', () => this.changed());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.lock();
    });
    form.querySelector('button.revise').addEventListener('click', () => this.revise());
  }

  /** The current calls of this reader (from ``GET /calls/``), by lesion id. */
  setCalls(calls) {
    for (const call of calls) {
      if (call.is_current === false || (call.session || 'unaided') !== this.session) continue;
      this.calls.set(call.lesion, call);
      if (!this.previousSeconds.has(call.lesion)) this.previousSeconds.set(call.lesion, call.time_spent_s || 0);
    }
  }

  remember(call) {
    if (!call || call.lesion === undefined || (call.session || 'unaided') !== this.session) return;
    this.calls.set(call.lesion, call);
    this.drafts.delete(call.lesion);
    this.onSavedCallback(call);
  }

  /** Show ``lesion``'s call (or a blank form); unsaved values of another lesion are kept as its draft. */
  setLesion(lesion) {
    if (this.lesion && this.lesion.id !== lesion?.id && this.form.dataset.dirty === '1') {
      this.drafts.set(this.lesion.id, this.values());
      this.saver.flush().catch(() => {});
    }
    this.lesion = lesion;
    this.revising = null;
    this.form.hidden = !lesion;
    if (!lesion) return;
    this.time.show(lesion.id);
    this.form.querySelector('.lesion-label').textContent = lesion.label;
    const call = this.calls.get(lesion.id);
    const values =
      this.drafts.get(lesion.id) ||
      (call && { malignant: call.malignant, probability: call.probability, subtype_guess: call.subtype_guess || '' });
    this.fill(values || { malignant: null, probability: 50, subtype_guess: '' });
    this.form.dataset.dirty = this.drafts.has(lesion.id) ? '1' : '0';
    this.showLocked(call);
    this.saver.show(call ? 'saved' : 'idle', call ? `Saved (revision ${call.revision || 1}).` : 'Not called yet.');
  }

  fill({ malignant, probability, subtype_guess: subtypeGuess }) {
    for (const radio of this.form.elements.malignant)
      radio.checked = malignant !== null && radio.value === String(malignant);
    this.form.elements.probability.value = probability;
    this.form.elements.subtype_guess.value = subtypeGuess || '';
    this.updateProbabilityText();
  }

  values() {
    const choice = [...this.form.elements.malignant].find((radio) => radio.checked);
    return {
      malignant: choice ? choice.value === 'true' : null,
      probability: Number(this.form.elements.probability.value),
      subtype_guess: this.form.elements.subtype_guess.value,
    };
  }

  updateProbabilityText() {
    this.form.querySelector('output.probability-value').textContent = this.form.elements.probability.value;
  }

  changed() {
    if (!this.lesion) return;
    this.updateProbabilityText();
    if (this.isLocked()) return; // a revision is stored on submit only
    this.form.dataset.dirty = '1';
    if (this.values().malignant === null) {
      this.saver.show('pending', 'Choose benign or malignant to save your call.');
      return;
    }
    this.saver.schedule();
  }

  isLocked() {
    const call = this.lesion && this.calls.get(this.lesion.id);
    return Boolean(call?.locked_at);
  }

  async saveOnce() {
    const lesion = this.lesion;
    const values = this.values();
    if (values.malignant === null) throw new ApiError(400, { malignant: ['choose benign or malignant'] });
    const call = await annotations.saveCall({
      reader_study: this.readerStudyId,
      lesion: lesion.id,
      session: this.session,
      ...values,
      time_spent_s: Math.round(((this.previousSeconds.get(lesion.id) || 0) + this.time.total(lesion.id)) * 10) / 10,
    });
    if (lesion === this.lesion) this.form.dataset.dirty = '0';
    return call;
  }

  async lock() {
    if (this.lesion && this.revising === this.lesion.id) {
      await this.submitRevision();
      return;
    }
    if (!this.lesion || this.isLocked()) return;
    const { malignant, probability } = this.values();
    if (malignant === null) {
      this.saver.show('error', 'Choose benign or malignant before submitting.');
      return;
    }
    const question = `Submit and lock your call on ${this.lesion.label}: ${malignant ? 'malignant' : 'benign'}, ${probability}% probability of malignancy?\nAfter locking, a change is a new revision.`;
    if (!window.confirm(question)) return;
    let call;
    try {
      call = await this.saver.flush();
      this.saver.show('saving', 'Locking…');
      call = await annotations.lockCall(call.id);
    } catch (error) {
      if (!this.status.querySelector('.error-message')) this.saver.showError(error);
      return;
    }
    this.remember(call);
    this.showLocked(call);
    this.saver.show('saved', `Locked (revision ${call.revision || 1}).`);
    this.onLocked(call);
  }

  /** Open the locked call for a revision: the next submit stores a new locked revision. */
  revise() {
    const call = this.lesion && this.calls.get(this.lesion.id);
    if (!call?.locked_at) return;
    this.revising = this.lesion.id;
    this.form.querySelector('fieldset').disabled = false;
    this.form.querySelector('button.lock').hidden = false;
    this.form.querySelector('button.lock').textContent = 'Submit revision';
    this.form.querySelector('.locked-note').hidden = true;
    this.saver.show('pending', `Revising revision ${call.revision || 1}: change your call and submit.`);
  }

  async submitRevision() {
    const call = this.calls.get(this.lesion.id);
    const values = this.values();
    const question = `Store a new revision of your call on ${this.lesion.label}: ${values.malignant ? 'malignant' : 'benign'}, ${values.probability}%?`;
    if (!window.confirm(question)) return;
    try {
      this.saver.show('saving', 'Saving the revision…');
      const revision = await annotations.reviseCall(call.id, {
        ...values,
        time_spent_s:
          Math.round(((this.previousSeconds.get(this.lesion.id) || 0) + this.time.total(this.lesion.id)) * 10) / 10,
      });
      this.revising = null;
      this.remember(revision);
      this.showLocked(revision);
      this.saver.show('saved', `Locked (revision ${revision.revision}).`);
      this.onLocked(revision);
    } catch (error) {
      this.saver.showError(error);
    }
  }

  showLocked(call) {
    const locked = Boolean(call?.locked_at);
    this.form.classList.toggle('locked', locked);
    this.form.querySelector('fieldset').disabled = locked;
    this.form.querySelector('button.lock').hidden = locked;
    this.form.querySelector('button.lock').textContent = 'Submit and lock';
    const note = this.form.querySelector('.locked-note');
    note.hidden = !locked;
    if (locked) note.querySelector('time').textContent = new Date(call.locked_at).toLocaleString();
  }
}

/** The coordinator's pathology form for the selected lesion (explicit save, PUT). */
export class PathologyForm {
  constructor(form, { onSaved = () => {} } = {}) {
    this.form = form;
    this.lesion = null;
    this.onSavedCallback = onSaved;
    this.saver = new Saver({
      save: () => annotations.savePathology(this.lesion.id, this.values()),
      status: form.querySelector('.save-status'),
      label: 'Pathology ',
      onSaved: (pathology) => this.onSavedCallback(this.lesion, pathology),
    });
    form.elements.subtype.addEventListener('change', () => {
      const subtype = form.elements.subtype.value;
      if (subtype) form.elements.malignant.value = String(isMalignant(subtype));
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.saver.flush().catch(() => {});
    });
  }

  async setLesion(lesion) {
    this.lesion = lesion;
    this.form.hidden = !lesion;
    if (!lesion) return;
    this.form.querySelector('.lesion-label').textContent = lesion.label;
    this.fill({ subtype: '', malignant: '', source: 'surgery', date: '' });
    this.saver.show('idle', 'Loading…');
    try {
      const pathology = await annotations.pathology(lesion.id);
      if (lesion === this.lesion) {
        this.fill({ ...pathology, malignant: String(pathology.malignant) });
        this.saver.show('saved', `Entered (revision ${pathology.revision || 1}).`);
      }
    } catch (error) {
      if (error.status === 404) this.saver.show('idle', 'No pathology entered yet.');
      else this.saver.showError(error);
    }
  }

  fill({ subtype, malignant, source, date }) {
    this.form.elements.subtype.value = subtype || '';
    this.form.elements.malignant.value = malignant === '' || malignant === undefined ? '' : String(malignant);
    this.form.elements.source.value = source || 'surgery';
    this.form.elements.date.value = date || '';
  }

  values() {
    const body = {
      subtype: this.form.elements.subtype.value,
      malignant: this.form.elements.malignant.value === 'true',
      source: this.form.elements.source.value,
    };
    if (this.form.elements.malignant.value === '') delete body.malignant;
    body.date = this.form.elements.date.value || null;
    return body;
  }
}

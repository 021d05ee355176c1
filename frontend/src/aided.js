// The aided session of a sequential reader study on the case page: once the reader's unaided
// call on the selected lesion is locked, the model's probability of malignancy (the version
// frozen for the reader study, named) and a second call form, for the aided call.
// The model's heat maps follow the same rule: their controls sit in this panel and the overlay
// asks for the frozen version's maps (?reader_study=) only while the panel shows.
// The server decides who sees the model's output (annotations.access.may_see_model_output);
// before the unaided lock this panel stays hidden and asks for nothing.
import { apiFetch } from './api.js';

const enc = encodeURIComponent;

export class AidedReading {
  constructor(section, { readerStudyId, CallForm, unaided, calls = [], onLocked = () => {}, heatMaps = null, onError = () => {} }) {
    this.section = section;
    this.heatMaps = heatMaps; // a HeatMapOverlay whose controls are in this panel, or null
    this.onError = onError;
    this.readerStudyId = Number(readerStudyId);
    this.unaided = unaided;
    this.lesion = null;
    this.output = section.querySelector('.model-output');
    this.form = new CallForm(section.querySelector('form.aided-call-form'), {
      readerStudyId, session: 'aided', onLocked,
    });
    this.form.setCalls(calls);
    // A locked unaided call of a sequential study never changes (the server refuses a revision).
    const revise = unaided.form.querySelector('.locked-note button.revise');
    if (revise) revise.hidden = true;
  }

  /** Show the aided panel of ``lesion`` when its unaided call is locked, else hide it. */
  async setLesion(lesion) {
    this.lesion = lesion;
    const unaided = lesion && this.unaided.calls.get(lesion.id);
    if (!unaided || !unaided.locked_at) {
      this.section.hidden = true;
      this.form.setLesion(null);
      if (this.heatMaps) this.heatMaps.showLesion(null).catch(this.onError);
      return;
    }
    this.section.hidden = false;
    this.section.querySelector('.lesion-label').textContent = lesion.label;
    this.output.dataset.state = 'loading';
    this.output.textContent = 'Loading the model output…';
    this.form.setLesion(lesion);
    if (this.heatMaps) this.heatMaps.showLesion(lesion).catch(this.onError);
    try {
      const answer = await apiFetch(
        `/api/v1/reader-studies/${enc(this.readerStudyId)}/lesions/${enc(lesion.id)}/model-output/`,
      );
      if (lesion !== this.lesion) return;
      this.output.dataset.state = 'shown';
      const { name } = answer.model_version;
      this.output.textContent = `Model ${name}: ${answer.probability_percent}% probability of malignancy.`;
    } catch (error) {
      if (lesion !== this.lesion) return;
      this.output.dataset.state = 'error';
      this.output.textContent = `The model output is not available: ${error.message || error}`;
    }
  }
}

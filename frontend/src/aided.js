// The aided session of a reader study on the case page.
// Sequential: once the reader's unaided call on the selected lesion is locked, the model's
// probability of malignancy (the version frozen for the reader study, named) and a second call
// form, for the aided call. Crossover: the case's first read (aided or unaided, the lesion's
// reading schedule from the lesions API, state ``readings``) shows first; the second read
// shows only once the server says it is open (the washout after the first lock), with the
// date it opens before then; the model's output shows only during the aided read, never
// after the aided call is locked.
// The model's heat maps follow the same rule: their controls sit in this panel and the overlay
// asks for the frozen version's maps (?reader_study=) only while the model's output shows.
// The server decides who sees the model's output (annotations.access.may_see_model_output);
// while this page hides it, it asks for nothing.
import { apiFetch } from './api.js';
import { get } from './state.js';

const enc = encodeURIComponent;

/** ``2026-12-29T21:57:39Z`` as ``2026-12-29 21:57 UTC`` (the server's 409 message writes it so). */
function utc(iso) {
  return `${new Date(iso).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export class AidedReading {
  constructor(
    section,
    {
      readerStudyId,
      CallForm,
      unaided,
      calls = [],
      onLocked = () => {},
      heatMaps = null,
      onError = () => {},
      design = 'sequential',
      firstSession = 'unaided',
      scheduleLine = null,
    },
  ) {
    this.section = section;
    this.heatMaps = heatMaps; // a HeatMapOverlay whose controls are in this panel, or null
    this.onError = onError;
    this.readerStudyId = Number(readerStudyId);
    this.unaided = unaided;
    this.design = design;
    this.firstSession = firstSession; // the case's first read, for a lesion the API has not scheduled (added here)
    this.scheduleLine = scheduleLine;
    this.lesion = null;
    this.output = section.querySelector('.model-output');
    this.form = new CallForm(section.querySelector('form.aided-call-form'), {
      readerStudyId,
      session: 'aided',
      onLocked,
    });
    this.form.setCalls(calls);
    // A locked unaided call in a study with an aided session never changes (the server refuses a revision).
    const revise = unaided.form.querySelector('.locked-note button.revise');
    if (revise) revise.hidden = true;
  }

  /** What shows for ``lesion`` now: the aided panel, the model's output in it, the unaided form, the schedule line. */
  stage(lesion) {
    const locked = (form) => Boolean(form.calls.get(lesion.id)?.locked_at);
    const unaidedLocked = locked(this.unaided);
    const aidedLocked = locked(this.form);
    if (this.design !== 'crossover') return { aided: unaidedLocked, output: unaidedLocked, unaided: true, line: '' };
    const reading = get('readings')?.get(lesion.id) || {
      first_session: this.firstSession,
      second_read_open: false,
      washout_days: null,
    };
    const days = reading.washout_days;
    const after = (first) => {
      if (days === 0) return `once you lock your ${first} call`;
      if (days === null || days === undefined) return `after the washout that follows your ${first} call`;
      return `${days} days after you lock your ${first} call`;
    };
    const opensOn = (second) =>
      reading.second_read_opens
        ? `Your ${second} read of this case opens on ${utc(reading.second_read_opens)}.`
        : `Your ${second} read of this case opens after the washout.`;
    const open = reading.second_read_open;
    if (reading.first_session === 'aided') {
      let line = '';
      if (!aidedLocked) line = `Aided read first: your unaided read of this case opens ${after('aided')}.`;
      else if (!open) line = opensOn('unaided');
      // After the aided lock the model's output is gone; the locked aided call shows again once the unaided one is locked.
      return { aided: !aidedLocked || unaidedLocked, output: !aidedLocked, unaided: aidedLocked && open, line };
    }
    let line = '';
    if (!unaidedLocked)
      line = `Unaided read first: your aided read (with the model's output) opens ${after('unaided')}.`;
    else if (!open) line = opensOn('aided');
    const aided = unaidedLocked && open;
    return { aided, output: aided && !aidedLocked, unaided: true, line };
  }

  showLine(text) {
    if (!this.scheduleLine) return;
    this.scheduleLine.textContent = text;
    this.scheduleLine.hidden = !text;
  }

  /** Show what ``lesion``'s reading allows now (see :meth:`stage`); the model's output is asked for only when it shows. */
  async setLesion(lesion) {
    this.lesion = lesion;
    const stage = lesion ? this.stage(lesion) : { aided: false, output: false, unaided: false, line: '' };
    this.showLine(stage.line);
    if (lesion) {
      this.unaided.form.hidden = !stage.unaided;
      // The unaided call's time counts only while its form shows.
      if (!stage.unaided) this.unaided.time.show(null);
      else if (this.unaided.time.lesionId !== lesion.id) this.unaided.time.show(lesion.id);
    }
    if (!stage.output) {
      this.output.hidden = true;
      this.output.dataset.state = 'idle';
      this.output.textContent = '';
      if (this.heatMaps) this.heatMaps.showLesion(null).catch(this.onError);
    }
    if (!stage.aided) {
      this.section.hidden = true;
      this.form.setLesion(null);
      return;
    }
    this.section.hidden = false;
    this.section.querySelector('.lesion-label').textContent = lesion.label;
    this.form.setLesion(lesion);
    if (!stage.output) return;
    this.output.hidden = false;
    this.output.dataset.state = 'loading';
    this.output.textContent = 'Loading the model output…';
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

// Case page entry: the four-phase viewer, the ROI tools, the lesion panel and either the
// reader's call form (reading a case of a reader study) or the coordinator's pathology
// form (study viewer). Everything goes through the REST API; the page shell, the URLs of
// the worker and codecs and each phase's opening slice come from the Django template.
//
// First images first: this module is small; it starts the decode workers and the study's
// requests at once, then loads the viewer (Cornerstone core and image loader) and shows
// every phase; only then are the tools, the lesion panel and the forms loaded.
// What the modules share (the selected lesion, the primary tool, the call badges, the pathology
// shown) is in state.js; this module wires them together and writes into none of their objects.
import { annotations, listOf } from './api.js';
import { get, set, subscribe } from './state.js';
import { fetchCase } from './study.js';
import { startDecodeWorkers } from './workers.js';

const root = document.getElementById('case');
const { study: studyInstanceUID, readerStudy: readerStudyId, mode } = root.dataset;
const statusLine = root.querySelector('.case-status');
const errorBanner = root.querySelector('.case-error');

const TOOL_KEYS = { w: 'windowLevel', p: 'pan', z: 'zoom', e: 'ellipse', r: 'rectangle', f: 'freehand', l: 'length' };
const PRESET_KEYS = { 1: 'abdomen', 2: 'kidney', 3: 'bone' };

function showStatus(text) {
  statusLine.textContent = text;
  statusLine.hidden = !text;
}

function showError(error) {
  errorBanner.textContent = error ? `Error: ${error.message || error}` : '';
  errorBanner.hidden = !error;
}

/** Our tool keys (the toolbar's data-tool) -> Cornerstone tool names. */
const toolNames = (tools) => ({ ...tools.NAVIGATION_TOOLS, ...tools.ROI_TOOLS });

function chooseTool(tools, key) {
  const name = toolNames(tools)[key];
  if (name) tools.setPrimaryTool(name);
}

/** Press the toolbar button of the tool on the left mouse button (state ``primaryTool``). */
function showPrimaryTool(tools, toolName) {
  const names = toolNames(tools);
  for (const button of root.querySelectorAll('[data-tool]')) {
    const pressed = names[button.dataset.tool] === toolName;
    button.classList.toggle('active', pressed);
    button.setAttribute('aria-pressed', String(pressed));
  }
}

function bindToolbar(viewer, tools, lesions) {
  subscribe('primaryTool', (toolName) => showPrimaryTool(tools, toolName));
  for (const button of root.querySelectorAll('[data-tool]'))
    button.addEventListener('click', () => chooseTool(tools, button.dataset.tool));
  for (const button of root.querySelectorAll('[data-preset]'))
    button.addEventListener('click', () => viewer.applyPreset(button.dataset.preset));
  for (const box of root.querySelectorAll('input[data-sync]'))
    box.addEventListener('change', () => viewer.setSync(box.dataset.sync, box.checked));
  root.querySelector('button.reset-view').addEventListener('click', () => viewer.resetView());

  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest('input, select, textarea, [contenteditable]')) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (TOOL_KEYS[key]) chooseTool(tools, TOOL_KEYS[key]);
    else if (PRESET_KEYS[key]) viewer.applyPreset(PRESET_KEYS[key]);
    else if (key === 'ArrowUp' || key === 'PageUp') viewer.scroll(-1);
    else if (key === 'ArrowDown' || key === 'PageDown') viewer.scroll(1);
    else if (key === '0') viewer.resetView();
    else if (key === 'n') lesions.newLesion().catch((error) => lesions.showError(error));
    else if (key === 's') toggleAllSync(viewer);
    else if (key === '[' || key === ']') goToCase(key === '[' ? 'previous' : 'next');
    else return;
    event.preventDefault();
  });
}

function toggleAllSync(viewer) {
  const boxes = [...root.querySelectorAll('input[data-sync]')];
  const enable = !boxes.every((box) => box.checked);
  for (const box of boxes) {
    box.checked = enable;
    viewer.setSync(box.dataset.sync, enable);
  }
}

function goToCase(which) {
  const link = root.querySelector(`a.${which}-case`);
  if (link?.getAttribute('href')) window.location.href = link.href;
}

async function showCaseNavigation() {
  const nav = root.querySelector('.case-nav');
  try {
    const worklist = await annotations.worklist(readerStudyId);
    const cases = worklist.cases || [];
    const index = cases.findIndex((c) => c.study_instance_uid === studyInstanceUID);
    if (index < 0) return;
    nav.querySelector('.case-position').textContent = `Case ${index + 1} of ${cases.length}`;
    for (const [which, other] of [
      ['previous', cases[index - 1]],
      ['next', cases[index + 1]],
    ]) {
      const link = nav.querySelector(`a.${which}-case`);
      if (other) link.href = other.case_url;
      else link.removeAttribute('href');
    }
    nav.hidden = false;
  } catch {
    // The worklist is a convenience here; the page works without it.
  }
}

/**
 * The reader's forms: the unaided call form and, in a reader study with an aided session, the
 * aided panel (aided.js); both follow the selected lesion, and the call badges follow the calls.
 */
async function setUpReaderForms(CallForm, lesions, heatMaps, publishPathologyAndReadings) {
  let aided = null;
  const onLocked = async () => {
    publishCallBadges(lesions, callForm);
    // Locking may unblind this lesion's pathology for the reader: reload what the API shows.
    // And in a crossover, whether the second read is open now (the server's washout rule).
    const data = await annotations.lesions(studyInstanceUID, readerStudyId);
    publishPathologyAndReadings(listOf(data));
    if (aided && aided.design === 'crossover' && aided.lesion) aided.setLesion(aided.lesion);
  };
  const callForm = new CallForm(root.querySelector('form.call-form:not(.aided-call-form)'), {
    readerStudyId,
    onLocked: () => {
      const reloaded = onLocked();
      aided?.setLesion(callForm.lesion); // a sequential study: now the model and the aided call
      return reloaded;
    },
    onSaved: () => publishCallBadges(lesions, callForm),
  });
  const lesionIds = new Set(lesions.lesions.map((l) => l.id));
  let calls = [];
  try {
    calls = listOf(await annotations.calls(readerStudyId)).filter((c) => lesionIds.has(c.lesion));
    callForm.setCalls(calls);
  } catch (error) {
    showError(error);
  }
  const aidedSection = root.querySelector('.aided-reading');
  if (aidedSection) {
    // a reader study with an aided session: sequential or crossover (aided.js)
    const { AidedReading } = await import('./aided.js');
    const aidedHeatMaps = heatMaps && aidedSection.contains(heatMaps.controls) ? heatMaps : null;
    aided = new AidedReading(aidedSection, {
      readerStudyId,
      CallForm,
      unaided: callForm,
      calls,
      onLocked,
      heatMaps: aidedHeatMaps,
      onError: showError,
      design: root.dataset.design,
      firstSession: root.dataset.firstSession,
      scheduleLine: root.querySelector('.reading-schedule'),
    });
  }
  publishCallBadges(lesions, callForm);
  const show = (lesion) => {
    callForm.setLesion(lesion);
    aided?.setLesion(lesion);
  };
  subscribe('selectedLesion', (lesion) => {
    show(lesion);
    publishCallBadges(lesions, callForm);
  });
  show(get('selectedLesion'));
}

/** The coordinator's pathology form, following the selected lesion. */
async function setUpPathologyForm(PathologyForm) {
  const form = new PathologyForm(root.querySelector('form.pathology-form'));
  subscribe('selectedLesion', (lesion) => form.setLesion(lesion));
  await form.setLesion(get('selectedLesion'));
}

/** State ``callBadges``: the reader's unaided call on each lesion of the case (locked, draft or none). */
function publishCallBadges(lesions, callForm) {
  const badge = (call) => (call ? (call.locked_at ? 'locked' : 'draft') : 'not called');
  set('callBadges', new Map(lesions.lesions.map((lesion) => [lesion.id, badge(callForm.calls.get(lesion.id))])));
}

/** The slice each phase opens at ({phase: SOPInstanceUID}), chosen by the page. */
function openingSlices() {
  const script = document.getElementById('opening-slices');
  return script ? JSON.parse(script.textContent) : {};
}

async function main() {
  const grid = root.querySelector('.viewport-grid');
  performance.mark('case:script');
  startDecodeWorkers(root.dataset.workerUrl);
  const caseData = fetchCase(studyInstanceUID);
  const { CaseViewer, PRESETS, initCornerstone } = await import('./viewer.js');
  performance.mark('case:viewer-loaded');
  for (const [name, preset] of Object.entries(PRESETS)) {
    const button = root.querySelector(`[data-preset="${name}"]`);
    if (button) button.title = `W${preset.windowWidth} / L${preset.windowCenter}`;
  }
  const rendering = new URLSearchParams(window.location.search).get('rendering') || 'auto';
  const { useCPURendering } = await initCornerstone({
    workerUrl: root.dataset.workerUrl,
    wasmBasePath: root.dataset.wasmBase,
    rendering,
  });
  root.dataset.rendering = useCPURendering ? 'cpu' : 'gpu';
  performance.mark('case:cornerstone-ready');
  const viewer = new CaseViewer(grid, { onStatus: showStatus });
  viewer.enableViewports();

  await viewer.open(caseData, openingSlices());
  root.dataset.timeToFirstImagesMs = String(viewer.timeToAllFirstImages);

  const [tools, { LesionPanel, publishPathologyAndReadings }, { CallForm, PathologyForm }] = await Promise.all([
    import('./tools.js'),
    import('./lesions.js'),
    import('./calls.js'),
  ]);
  performance.mark('case:annotation-loaded');
  tools.initTools(viewer);
  tools.setupTools(
    viewer.renderingEngineId,
    viewer.panels.map((p) => p.viewportId),
  );
  tools.synchronize(viewer);

  const heatMapControls = root.querySelector('.heat-map-controls');
  let heatMaps = null;
  // In a reader's aided panel the overlay follows the panel (shown after the unaided lock), not the selection.
  const heatMapsInAidedPanel = Boolean(heatMapControls?.closest('.aided-reading'));
  if (heatMapControls) {
    const { HeatMapOverlay } = await import('./heatmaps.js');
    heatMaps = new HeatMapOverlay(viewer, heatMapControls, {
      readerStudyId: heatMapsInAidedPanel ? readerStudyId : null,
    });
  }
  const lesions = new LesionPanel(root.querySelector('.lesions'), { viewer, studyInstanceUID, readerStudyId });
  if (heatMaps && !heatMapsInAidedPanel)
    subscribe('selectedLesion', (lesion) => heatMaps.showLesion(lesion).catch(showError));
  bindToolbar(viewer, tools, lesions);
  if (mode === 'reader') showCaseNavigation();

  tools.onAnnotationEvents({
    completed: (annotation) => lesions.onCompleted(annotation),
    modified: (annotation) => lesions.onModified(annotation),
    removed: (annotation) => lesions.onRemoved(annotation),
  });
  await lesions.load();
  if (mode === 'reader') await setUpReaderForms(CallForm, lesions, heatMaps, publishPathologyAndReadings);
  else await setUpPathologyForm(PathologyForm);
  if (heatMaps && !heatMapsInAidedPanel) await heatMaps.showLesion(lesions.selected).catch(showError);
  root.dataset.ready = '1';
}

main().catch((error) => {
  console.error(error);
  showError(error);
  showStatus('');
  root.dataset.ready = 'error';
});

// The four-phase viewer: one STACK viewport per contrast phase (NC, CM, NG, EX) in a
// 2 x 2 grid, images from the archive's instance files (wadouri:), sorted by slice
// position on the server; slice index and loading state per viewport; window/level
// presets; synchronized slice position, window/level and zoom/pan (each switchable).
// Only Cornerstone's core and image loader: the first images do not wait for the tools,
// whose module (tools.js) attaches the synchronizers once it is loaded.
import {
  init as coreInit,
  utilities as csUtilities,
  Enums,
  getEnabledElement,
  getRenderingCapabilities,
  getWebWorkerManager,
  metaData,
  RenderingEngine,
} from '@cornerstonejs/core';
import { init as loaderInit } from '@cornerstonejs/dicom-image-loader';

import { archive } from './api.js';
import { PHASES } from './vocabulary.js';
import { decodeWorkerCount, takeDecodeWorker } from './workers.js';

export const PRESETS = {
  abdomen: { label: 'Abdomen', windowWidth: 400, windowCenter: 40 },
  kidney: { label: 'Kidney', windowWidth: 500, windowCenter: 100 },
  bone: { label: 'Bone', windowWidth: 1500, windowCenter: 300 },
};

const RENDERING_ENGINE_ID = 'case-viewer';
let cornerstoneReady = null;

/**
 * Start Cornerstone3D once per page: core, our own decode workers (registered before the
 * loader's init so the loader uses them; those started early by the entry module first),
 * the codec wasm folder, and the geometry provider.
 *
 * ``rendering``: "gpu", "cpu" or "auto" (CPU where WebGL is a software rasterizer such as
 * SwiftShader, where the CPU path draws a 512 x 512 slice faster).
 */
export function initCornerstone({ workerUrl, wasmBasePath, rendering = 'auto' }) {
  if (!cornerstoneReady) {
    cornerstoneReady = (async () => {
      const softwareOnly = rendering === 'auto' && getRenderingCapabilities().softwareRasterizer;
      const useCPURendering = rendering === 'cpu' || softwareOnly;
      await coreInit({ rendering: { useCPURendering } });
      performance.mark('case:core-init');
      const workers = decodeWorkerCount();
      getWebWorkerManager().registerWorker('dicomImageLoader', () => takeDecodeWorker(workerUrl), {
        maxWorkerInstances: workers,
      });
      loaderInit({ maxWebWorkers: workers, wasmBasePath });
      metaData.addProvider(geometryProvider, -500);
      // For the browser tests and the console: Cornerstone's own lookup of a viewport by its
      // element, getEnabledElement(document.querySelector('.viewport-element')).viewport.
      window.portal = { getEnabledElement };
      return { useCPURendering };
    })();
  }
  return cornerstoneReady;
}

// imageId -> geometry from the REST instance list. The loader's own provider answers once
// a file is loaded; this one answers for slices not loaded yet, which the slice
// synchronizer needs to find the nearest slice of another phase.
const geometryByImageId = new Map();

function geometryProvider(type, imageId) {
  if (type !== 'imagePlaneModule') return undefined;
  const geometry = geometryByImageId.get(imageId);
  if (!geometry) return undefined;
  const { instance, frameOfReferenceUID } = geometry;
  const orientation = instance.image_orientation_patient || [1, 0, 0, 0, 1, 0];
  const [rowSpacing, columnSpacing] = instance.pixel_spacing || [1, 1];
  return {
    frameOfReferenceUID,
    rows: instance.rows,
    columns: instance.columns,
    imageOrientationPatient: orientation,
    rowCosines: orientation.slice(0, 3),
    columnCosines: orientation.slice(3, 6),
    imagePositionPatient: instance.image_position_patient,
    sliceThickness: instance.slice_thickness,
    sliceLocation: instance.slice_position,
    pixelSpacing: [rowSpacing, columnSpacing],
    rowPixelSpacing: rowSpacing,
    columnPixelSpacing: columnSpacing,
  };
}

export function imageIdFor(sopInstanceUID, frameNumber = 1) {
  const url = new URL(archive.instanceFileUrl(sopInstanceUID), window.location.origin).href;
  return frameNumber > 1 ? `wadouri:${url}&frame=${frameNumber - 1}` : `wadouri:${url}`;
}

/** One phase panel: its viewport, the stack (instances, image ids) and its overlay elements. */
class PhasePanel {
  constructor(phase, cell) {
    this.phase = phase;
    this.cell = cell;
    this.element = cell.querySelector('.viewport-element');
    this.sliceLabel = cell.querySelector('.slice-index');
    this.loading = cell.querySelector('.viewport-loading');
    this.viewportId = `viewport-${phase}`;
    this.series = null;
    this.instances = [];
    this.imageIds = [];
    this.firstImageMs = null;
  }

  get viewport() {
    return this.engine.getViewport(this.viewportId);
  }

  setLoading(text) {
    this.loading.textContent = text || '';
    this.loading.hidden = !text;
    this.cell.classList.toggle('is-loading', Boolean(text));
  }

  updateSliceIndex() {
    const viewport = this.viewport;
    const index = viewport ? viewport.getCurrentImageIdIndex() : 0;
    const total = this.imageIds.length;
    this.sliceLabel.textContent = total ? `${this.phase} ${index + 1}/${total}` : `${this.phase} –`;
    this.sliceLabel.dataset.index = String(index + 1);
    this.sliceLabel.dataset.total = String(total);
  }

  instanceAt(imageId) {
    const index = this.imageIds.indexOf(imageId);
    return index >= 0 ? this.instances[index] : null;
  }
}

/**
 * The case viewer. ``open(caseData, opening)`` shows each phase's sorted instances at its
 * opening slice (the page's choice, else the middle slice).
 */
export class CaseViewer {
  constructor(grid, { onStatus = () => {} } = {}) {
    this.grid = grid;
    this.onStatus = onStatus;
    this.engine = new RenderingEngine(RENDERING_ENGINE_ID);
    this.panels = PHASES.map((phase) => new PhasePanel(phase, grid.querySelector(`[data-phase="${phase}"]`)));
    for (const panel of this.panels) panel.engine = this.engine;
    this.synchronizers = {};
    this.syncEnabled = { slice: true, voi: true, zoomPan: true };
    this.activePanel = this.panels[1];
  }

  get renderingEngineId() {
    return RENDERING_ENGINE_ID;
  }

  panel(phase) {
    return this.panels.find((p) => p.phase === phase);
  }

  panelForViewport(viewportId) {
    return this.panels.find((p) => p.viewportId === viewportId);
  }

  panelForImageId(imageId) {
    return this.panels.find((p) => p.imageIds.includes(imageId));
  }

  panelForElement(element) {
    return this.panels.find((p) => p.element === element);
  }

  /** Panels that have a series and a viewport. */
  get shownPanels() {
    return this.panels.filter((p) => p.series && p.imageIds.length);
  }

  /** Create the four viewports (before the tools are bound to them). */
  enableViewports() {
    this.engine.setViewports(
      this.panels.map((panel) => ({
        viewportId: panel.viewportId,
        type: Enums.ViewportType.STACK,
        element: panel.element,
        defaultOptions: { background: [0, 0, 0] },
      })),
    );
    for (const panel of this.panels) {
      panel.element.addEventListener('contextmenu', (event) => event.preventDefault());
      panel.element.addEventListener(Enums.Events.STACK_NEW_IMAGE, () => panel.updateSliceIndex());
      panel.element.addEventListener('pointerenter', () => this.setActivePanel(panel));
      panel.element.addEventListener('pointerdown', () => this.setActivePanel(panel));
    }
  }

  setActivePanel(panel) {
    this.activePanel = panel;
    for (const p of this.panels) p.cell.classList.toggle('active', p === panel);
  }

  /**
   * Show a case fetched by :func:`fetchCase` (a promise). Each phase opens at the slice
   * ``opening[phase]`` (a SOPInstanceUID, chosen by the page: the selected lesion's
   * reference ROI) when it is in the phase's stack, else at its middle slice.
   */
  async open(caseData, opening = {}) {
    for (const panel of this.panels) panel.setLoading(`Loading ${panel.phase}…`);
    this.onStatus('Loading the study…');
    const { study, chosen, instances } = await caseData;
    this.study = study;
    await Promise.all(
      this.panels.map((panel) =>
        this.openPanel(panel, chosen[panel.phase], instances[panel.phase], opening[panel.phase]),
      ),
    );
    this.onStatus('');
    return study;
  }

  async openPanel(panel, series, instancesRequest, openingSOPInstanceUID) {
    if (!series) {
      panel.setLoading(`No ${panel.phase} series in this study`);
      panel.cell.classList.add('missing');
      panel.updateSliceIndex();
      return;
    }
    panel.series = series;
    panel.instances = await instancesRequest;
    performance.mark(`case:instances-${panel.phase}`);
    panel.imageIds = panel.instances.map((instance) => imageIdFor(instance.sop_instance_uid));
    const frameOfReferenceUID = series.frame_of_reference_uid || '';
    panel.instances.forEach((instance, i) => {
      geometryByImageId.set(panel.imageIds[i], { instance, frameOfReferenceUID });
    });
    const firstRendered = new Promise((resolve) => {
      const onRendered = () => {
        panel.element.removeEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
        resolve();
      };
      panel.element.addEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
    });
    const opening = panel.instances.findIndex((instance) => instance.sop_instance_uid === openingSOPInstanceUID);
    const first = opening >= 0 ? opening : Math.floor(panel.imageIds.length / 2);
    try {
      await panel.viewport.setStack(panel.imageIds, first);
    } catch (error) {
      panel.setLoading(`${panel.phase}: the images could not be loaded (${error.message || error})`);
      panel.cell.classList.add('failed');
      return;
    }
    this.applyPreset('abdomen', [panel]);
    performance.mark(`case:stack-set-${panel.phase}`);
    await firstRendered;
    performance.mark(`case:first-image-${panel.phase}`);
    panel.firstImageMs = Math.round(performance.now());
    panel.cell.dataset.firstImageMs = String(panel.firstImageMs);
    panel.setLoading('');
    panel.updateSliceIndex();
  }

  /** Take the synchronizers made by the tools ({slice, voi, zoomPan}), each on or off as chosen so far. */
  attachSynchronizers(synchronizers) {
    this.synchronizers = synchronizers;
    for (const [kind, enabled] of Object.entries(this.syncEnabled)) this.setSync(kind, enabled);
  }

  /** Switch one kind of synchronization ("slice", "voi", "zoomPan") on or off. */
  setSync(kind, enabled) {
    this.syncEnabled[kind] = enabled;
    const synchronizer = this.synchronizers[kind];
    if (synchronizer) synchronizer.setEnabled(enabled);
  }

  applyPreset(name, panels = this.shownPanels) {
    const preset = PRESETS[name];
    if (!preset) return;
    const voiRange = csUtilities.windowLevel.toLowHighRange(preset.windowWidth, preset.windowCenter);
    for (const panel of panels) {
      panel.viewport.setProperties({ voiRange });
      panel.viewport.render();
    }
  }

  /** Move the active viewport by ``delta`` slices (the synchronizer moves the others). */
  async scroll(delta, panel = this.activePanel) {
    if (!panel?.imageIds.length) return;
    await csUtilities.scroll(panel.viewport, { delta });
  }

  resetView() {
    for (const panel of this.shownPanels) {
      panel.viewport.resetCamera();
      panel.viewport.render();
    }
  }

  /** Show the slice ``imageId`` in the viewport of ``phase``. */
  async showImage(phase, imageId) {
    const panel = this.panel(phase);
    const index = panel ? panel.imageIds.indexOf(imageId) : -1;
    if (index >= 0) await panel.viewport.setImageIdIndex(index);
  }

  /** Milliseconds from navigation start until the first image of every shown phase was drawn. */
  get timeToAllFirstImages() {
    const times = this.shownPanels.map((p) => p.firstImageMs);
    return times.every((t) => t !== null) && times.length ? Math.max(...times) : null;
  }
}

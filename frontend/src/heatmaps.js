// The model's heat map over each phase's viewport: what drove the CNN's score for the
// selected lesion (Grad-CAM or occlusion, from GET /api/v1/lesions/{id}/heat-maps/).
// A canvas over each viewport draws the map, stretched over the image window of the patch
// the model saw, whenever the viewport shows the map's slice (on every render, so it
// follows scrolling, zoom and pan). A toggle, an opacity slider and a colour bar sit in
// the toolbar (coordinators) or in the aided panel (a reader, after the unaided lock: the maps of
// the model frozen for the reader study); they stay hidden unless the API answers with maps.
import { utilities as csUtilities, Enums } from '@cornerstonejs/core';

import { modelOutput } from './api.js';

/** The colour of a value in [0, 1] (a "jet" ramp: blue, cyan, yellow, red), as [r, g, b]. */
export function colourFor(value) {
  const v = Math.min(1, Math.max(0, value));
  const channel = (centre) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - centre))));
  return [channel(3), channel(2), channel(1)];
}

/** A canvas of ``values`` (rows of floats), one pixel per map cell. */
function mapImage(values) {
  const rows = values.length;
  const columns = rows ? values[0].length : 0;
  const canvas = document.createElement('canvas');
  canvas.width = columns;
  canvas.height = rows;
  const context = canvas.getContext('2d');
  const image = context.createImageData(columns, rows);
  for (const [r, row] of values.entries()) {
    for (const [c, value] of row.entries()) {
      const [red, green, blue] = colourFor(value);
      image.data.set([red, green, blue, 255], 4 * (r * columns + c));
    }
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

export class HeatMapOverlay {
  /** ``controls``: the group with ``input.heat-map-toggle``, ``input.heat-map-opacity`` and ``canvas.heat-map-colour-bar``;
   * ``readerStudyId``: ask for the maps of that reader study's aided session (a reader's case page). */
  constructor(viewer, controls, { readerStudyId = null } = {}) {
    this.viewer = viewer;
    this.controls = controls;
    this.readerStudyId = readerStudyId;
    this.toggle = controls.querySelector('input.heat-map-toggle');
    this.opacity = controls.querySelector('input.heat-map-opacity');
    this.note = controls.querySelector('.heat-map-note');
    this.maps = new Map(); // phase -> {heatMap, image}
    this.lesionId = null;
    this.canvases = new Map();
    for (const panel of viewer.panels) {
      const canvas = document.createElement('canvas');
      canvas.className = 'heat-map-overlay';
      canvas.hidden = true;
      panel.cell.insertBefore(canvas, panel.element.nextSibling);
      this.canvases.set(panel.phase, canvas);
      panel.element.addEventListener(Enums.Events.IMAGE_RENDERED, () => this.draw(panel));
    }
    this.toggle.addEventListener('change', () => this.drawAll());
    this.opacity.addEventListener('input', () => this.drawAll());
    this.drawColourBar(controls.querySelector('canvas.heat-map-colour-bar'));
  }

  drawColourBar(canvas) {
    if (!canvas) return;
    const context = canvas.getContext('2d');
    for (let x = 0; x < canvas.width; x += 1) {
      const [r, g, b] = colourFor(x / (canvas.width - 1));
      context.fillStyle = `rgb(${r}, ${g}, ${b})`;
      context.fillRect(x, 0, 1, canvas.height);
    }
  }

  /** Fetch and show the maps of ``lesion`` (none: the controls hide). */
  async showLesion(lesion) {
    const lesionId = lesion ? lesion.id : null;
    this.lesionId = lesionId;
    this.maps.clear();
    let heatMaps = [];
    if (lesionId !== null) {
      try {
        heatMaps = (await modelOutput.heatMaps(lesionId, this.readerStudyId)).heat_maps || [];
      } catch (error) {
        // 403: not (yet) for this user; 404: no such lesion here; 409: no model frozen for the reader study.
        if (![403, 404, 409].includes(error.status)) throw error;
      }
    }
    if (this.lesionId !== lesionId) return; // another lesion was selected meanwhile
    for (const heatMap of heatMaps) {
      if (!this.maps.has(heatMap.phase)) this.maps.set(heatMap.phase, { heatMap, image: mapImage(heatMap.values) });
    }
    this.controls.hidden = this.maps.size === 0;
    if (this.note) {
      const first = heatMaps[0];
      this.note.textContent = first ? `${first.model} · ${first.method === 'grad_cam' ? 'Grad-CAM' : 'occlusion'}` : '';
    }
    this.drawAll();
  }

  get enabled() {
    return this.toggle.checked && this.maps.size > 0;
  }

  drawAll() {
    for (const panel of this.viewer.panels) this.draw(panel);
  }

  /** Draw the phase's map when the viewport shows its slice; clear the overlay otherwise. */
  draw(panel) {
    const canvas = this.canvases.get(panel.phase);
    const entry = this.maps.get(panel.phase);
    const viewport = panel.viewport;
    const imageId = viewport && panel.imageIds.length ? viewport.getCurrentImageId() : null;
    const instance = imageId ? panel.instanceAt(imageId) : null;
    const show = this.enabled && entry && instance && instance.sop_instance_uid === entry.heatMap.sop_instance_uid;
    canvas.hidden = !show;
    canvas.dataset.shown = show ? '1' : '';
    if (!show) return;
    const ratio = window.devicePixelRatio || 1;
    const width = panel.element.clientWidth;
    const height = panel.element.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const context = canvas.getContext('2d');
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    // The window's corners (image pixel edges, [column, row]) through world to canvas coordinates.
    const { row, column, rows, columns } = entry.heatMap.window;
    const toCanvas = (c, r) => viewport.worldToCanvas(csUtilities.imageToWorldCoords(imageId, [c, r]));
    const origin = toCanvas(column, row);
    const right = toCanvas(column + columns, row);
    const down = toCanvas(column, row + rows);
    const [mapRows, mapColumns] = entry.heatMap.shape;
    context.setTransform(
      (ratio * (right[0] - origin[0])) / mapColumns,
      (ratio * (right[1] - origin[1])) / mapColumns,
      (ratio * (down[0] - origin[0])) / mapRows,
      (ratio * (down[1] - origin[1])) / mapRows,
      ratio * origin[0],
      ratio * origin[1],
    );
    context.imageSmoothingEnabled = true;
    context.globalAlpha = Number(this.opacity.value) / 100;
    context.drawImage(entry.image, 0, 0);
  }
}

// Cornerstone3D tools of the case page: navigation tools (window/level, pan, zoom, wheel
// scroll), the synchronizers and stack prefetching, and the ROI tools (ellipse, rectangle,
// freehand, length); conversion between a live annotation and the ROI record the API
// stores, and restoring saved ROIs. Loaded once the first images are shown.
import { eventTarget, getEnabledElementByViewportId } from '@cornerstonejs/core';
import {
  addTool,
  annotation as annotationApi,
  EllipticalROITool,
  LengthTool,
  PanTool,
  PlanarFreehandROITool,
  RectangleROITool,
  StackScrollTool,
  store,
  synchronizers,
  Enums as ToolEnums,
  ToolGroupManager,
  init as toolsInit,
  utilities as toolUtilities,
  WindowLevelTool,
  ZoomTool,
} from '@cornerstonejs/tools';

import { get, set } from './state.js';

const { MouseBindings, Events: ToolEvents } = ToolEnums;

/** Our tool keys (as stored in ROI.tool) -> Cornerstone tool names. */
export const ROI_TOOLS = {
  ellipse: EllipticalROITool.toolName,
  rectangle: RectangleROITool.toolName,
  freehand: PlanarFreehandROITool.toolName,
  length: LengthTool.toolName,
};
export const NAVIGATION_TOOLS = {
  windowLevel: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
};
const TOOL_KEY_BY_NAME = Object.fromEntries(Object.entries(ROI_TOOLS).map(([key, name]) => [name, key]));
const TOOL_GROUP_ID = 'case-tools';

let toolGroup = null;

/**
 * Start Cornerstone3D tools and register every tool, for the viewer's viewports. They were
 * enabled before the tools were loaded (the first images do not wait for this module), and
 * the tools' init listens only to viewports enabled after it: give each its annotation
 * layer and the mouse, wheel and key listeners as its enabled event would have.
 */
export function initTools(viewer) {
  toolsInit();
  for (const Tool of [
    WindowLevelTool,
    PanTool,
    ZoomTool,
    StackScrollTool,
    EllipticalROITool,
    RectangleROITool,
    PlanarFreehandROITool,
    LengthTool,
  ]) {
    addTool(Tool);
  }
  for (const panel of viewer.panels) {
    store.addEnabledElement({
      detail: { element: panel.element, viewportId: panel.viewportId, renderingEngineId: viewer.renderingEngineId },
    });
  }
}

/** Synchronize slice position, window/level and zoom/pan of the shown phases, and prefetch the rest of each stack. */
export function synchronize(viewer) {
  const make = {
    slice: () => synchronizers.createImageSliceSynchronizer('sync-slice'),
    voi: () => synchronizers.createVOISynchronizer('sync-voi', { syncInvertState: false, syncColormap: false }),
    zoomPan: () => synchronizers.createZoomPanSynchronizer('sync-zoompan'),
  };
  const made = {};
  for (const [kind, create] of Object.entries(make)) {
    made[kind] = create();
    for (const panel of viewer.shownPanels)
      made[kind].add({ renderingEngineId: viewer.renderingEngineId, viewportId: panel.viewportId });
  }
  viewer.attachSynchronizers(made);
  for (const panel of viewer.shownPanels) toolUtilities.stackPrefetch.enable(panel.element);
}

/** Bind the tools to the viewports: W/L on the left button, pan on the middle, zoom on the right, scroll on the wheel. */
export function setupTools(renderingEngineId, viewportIds) {
  toolGroup = ToolGroupManager.createToolGroup(TOOL_GROUP_ID);
  for (const name of [...Object.values(NAVIGATION_TOOLS), StackScrollTool.toolName, ...Object.values(ROI_TOOLS)]) {
    toolGroup.addTool(name);
  }
  for (const viewportId of viewportIds) toolGroup.addViewport(viewportId, renderingEngineId);
  toolGroup.setToolActive(NAVIGATION_TOOLS.windowLevel, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  toolGroup.setToolActive(NAVIGATION_TOOLS.pan, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  toolGroup.setToolActive(NAVIGATION_TOOLS.zoom, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  toolGroup.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  for (const name of Object.values(ROI_TOOLS)) toolGroup.setToolPassive(name);
  set('primaryTool', NAVIGATION_TOOLS.windowLevel);
  return toolGroup;
}

/**
 * Put ``toolName`` on the left mouse button (state ``primaryTool``, set again when it is there
 * already); the previous left-button tool stays usable where it can (ROIs stay editable).
 */
export function setPrimaryTool(toolName) {
  if (!toolGroup) return;
  const previous = get('primaryTool');
  if (toolName !== previous) {
    if (previous === NAVIGATION_TOOLS.pan) {
      toolGroup.setToolActive(previous, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    } else if (previous === NAVIGATION_TOOLS.zoom) {
      toolGroup.setToolActive(previous, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    } else if (Object.values(NAVIGATION_TOOLS).includes(previous)) {
      toolGroup.setToolDisabled(previous);
    } else {
      toolGroup.setToolPassive(previous);
    }
    toolGroup.setToolActive(toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  }
  set('primaryTool', toolName);
}

const round = (value, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

function pickStats(stats, tool) {
  const names = tool === 'length' ? ['length'] : ['mean', 'stdDev', 'min', 'max', 'area'];
  const picked = {};
  for (const name of names) {
    if (Number.isFinite(stats[name])) picked[name] = round(stats[name]);
  }
  return picked;
}

/**
 * The whitelisted ROI record of a live annotation, or null for annotations that are
 * not ROIs: {tool, imageId, points [[x,y,z] mm], stats {mean, stdDev, min, max, area | length}}.
 */
export function annotationRecord(annotation) {
  const tool = TOOL_KEY_BY_NAME[annotation?.metadata?.toolName];
  if (!tool) return null;
  const raw = tool === 'freehand' ? annotation.data?.contour?.polyline : annotation.data?.handles?.points;
  if (!raw?.length) return null;
  const stats = Object.values(annotation.data.cachedStats || {}).find((s) => s && typeof s === 'object') || {};
  return {
    tool,
    imageId: annotation.metadata.referencedImageId,
    points: raw.map((point) => Array.from(point, (v) => round(v))),
    stats: pickStats(stats, tool),
  };
}

/** Draw a saved ROI on ``viewportId`` (the slice ``imageId``) and return its annotation UID. */
export function restoreAnnotation(viewportId, roi, imageId) {
  const annotationUID = `roi-${roi.id}`;
  const options = { referencedImageId: imageId, annotationUID };
  if (roi.tool === 'ellipse') EllipticalROITool.hydrate(viewportId, roi.points, options);
  else if (roi.tool === 'rectangle') RectangleROITool.hydrate(viewportId, roi.points, options);
  else if (roi.tool === 'length') LengthTool.hydrate(viewportId, roi.points, options);
  else if (roi.tool === 'freehand') restoreFreehand(viewportId, roi, imageId, annotationUID);
  else return null;
  return annotationUID;
}

// PlanarFreehandROITool has no hydrate: build the annotation and add it to the state.
function restoreFreehand(viewportId, roi, imageId, annotationUID) {
  const enabledElement = getEnabledElementByViewportId(viewportId);
  if (!enabledElement) return;
  const { viewport } = enabledElement;
  const camera = viewport.getCamera();
  const annotation = {
    annotationUID,
    highlighted: false,
    invalidated: true,
    isLocked: false,
    isVisible: true,
    metadata: {
      toolName: ROI_TOOLS.freehand,
      referencedImageId: imageId,
      FrameOfReferenceUID: viewport.getFrameOfReferenceUID(),
      viewPlaneNormal: [...camera.viewPlaneNormal],
      viewUp: [...camera.viewUp],
    },
    data: {
      contour: { polyline: roi.points.map((p) => [...p]), closed: true },
      handles: { points: [], activeHandleIndex: null, textBox: { hasMoved: false } },
      label: '',
      cachedStats: {},
    },
  };
  annotationApi.state.addAnnotation(annotation, viewport.element);
  toolUtilities.triggerAnnotationRenderForViewportIds([viewportId]);
}

export function getAnnotation(annotationUID) {
  return annotationApi.state.getAnnotation(annotationUID);
}

/** Remove an annotation from the viewers without telling the listeners (it was replaced or deleted on purpose). */
export function removeAnnotationQuietly(annotationUID, viewportIds) {
  if (!getAnnotation(annotationUID)) return;
  silenced.add(annotationUID);
  annotationApi.state.removeAnnotation(annotationUID);
  silenced.delete(annotationUID);
  toolUtilities.triggerAnnotationRenderForViewportIds(viewportIds);
}

const silenced = new Set();

/** Listen to ROI annotations being completed, modified and removed (handlers get the annotation). */
export function onAnnotationEvents({ completed, modified, removed }) {
  const isRoi = (annotation) => Boolean(annotation && TOOL_KEY_BY_NAME[annotation.metadata?.toolName]);
  eventTarget.addEventListener(ToolEvents.ANNOTATION_COMPLETED, (event) => {
    if (isRoi(event.detail.annotation)) completed(event.detail.annotation);
  });
  eventTarget.addEventListener(ToolEvents.ANNOTATION_MODIFIED, (event) => {
    if (isRoi(event.detail.annotation)) modified(event.detail.annotation);
  });
  eventTarget.addEventListener(ToolEvents.ANNOTATION_REMOVED, (event) => {
    const { annotation } = event.detail;
    if (isRoi(annotation) && !silenced.has(annotation.annotationUID)) removed(annotation);
  });
}

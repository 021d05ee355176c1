// The DICOM decode workers. The entry module starts them before Cornerstone is loaded, so
// that the worker script (with its codec glue) loads and starts while the viewer's modules
// load, not after them; initCornerstone hands them to the image loader.
const started = [];

/** Workers to decode with: one fewer than the cores (the page needs one), 1 to 4. */
export function decodeWorkerCount() {
  return Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1));
}

/** Start the decode workers now (their script is ``url``, an ES module). */
export function startDecodeWorkers(url, count = decodeWorkerCount()) {
  while (started.length < count) started.push(new Worker(url, { type: 'module' }));
}

/** A decode worker: one of those started early while there are any, then a new one. */
export function takeDecodeWorker(url) {
  return started.shift() || new Worker(url, { type: 'module' });
}

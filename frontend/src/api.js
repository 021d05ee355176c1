// Talks to the portal's REST API with the session cookie and the CSRF token.

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector('input[name=csrfmiddlewaretoken]');
  return input ? input.value : '';
}

export class ApiError extends Error {
  constructor(status, body) {
    super(describeError(status, body));
    this.status = status;
    this.body = body;
  }

  /** Worth retrying by itself: the network failed or the server had a passing problem. */
  get transient() {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

function describeError(status, body) {
  if (status === 0) return body.error;
  if (body && typeof body === 'object') {
    if (body.detail) return `${status}: ${body.detail}`;
    if (body.error) return `${status}: ${body.error}`;
    const fields = Object.entries(body).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : JSON.stringify(v)}`);
    if (fields.length) return `${status}: ${fields.join('; ')}`;
  }
  return `${status}: the server refused the request`;
}

export async function apiFetch(url, { method = 'GET', body, headers = {} } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (method !== 'GET') init.headers['X-CSRFToken'] = csrfToken();
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, { error: 'the server could not be reached (network error)' });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: response.ok ? 'the server sent an answer that is not JSON' : response.statusText || 'not JSON' };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Multipart upload with progress (fetch has no upload progress; XMLHttpRequest does).
export function uploadWithProgress(url, formData, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('X-CSRFToken', csrfToken());
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = { error: xhr.responseText.slice(0, 200) };
      }
      resolve({ status: xhr.status, data });
    };
    xhr.onerror = () => reject(new Error('network error: the upload did not reach the server'));
    xhr.send(formData);
  });
}

// Endpoints of the archive and annotations APIs used by the viewer pages.
const enc = encodeURIComponent;

export const archive = {
  study: (studyInstanceUID) => apiFetch(`/api/v1/studies/${enc(studyInstanceUID)}/`),
  instances: (seriesInstanceUID) => apiFetch(`/api/v1/series/${enc(seriesInstanceUID)}/instances/`),
  instanceFileUrl: (sopInstanceUID) => `/api/v1/instances/${enc(sopInstanceUID)}/file/`,
};

export const annotations = {
  readerStudies: () => apiFetch('/api/v1/reader-studies/'),
  worklist: (readerStudyId) => apiFetch(`/api/v1/reader-studies/${enc(readerStudyId)}/worklist/`),
  lesions: (studyInstanceUID, readerStudyId) => {
    const query = new URLSearchParams({ study: studyInstanceUID, limit: '500' });
    if (readerStudyId) query.set('reader_study', readerStudyId);
    return apiFetch(`/api/v1/lesions/?${query}`);
  },
  createLesion: (body) => apiFetch('/api/v1/lesions/', { method: 'POST', body }),
  updateLesion: (id, body) => apiFetch(`/api/v1/lesions/${enc(id)}/`, { method: 'PATCH', body }),
  createRoi: (body) => apiFetch('/api/v1/rois/', { method: 'POST', body }),
  updateRoi: (id, body) => apiFetch(`/api/v1/rois/${enc(id)}/`, { method: 'PATCH', body }),
  deleteRoi: (id) => apiFetch(`/api/v1/rois/${enc(id)}/`, { method: 'DELETE' }),
  pathology: (lesionId) => apiFetch(`/api/v1/lesions/${enc(lesionId)}/pathology/`),
  savePathology: (lesionId, body) => apiFetch(`/api/v1/lesions/${enc(lesionId)}/pathology/`, { method: 'PUT', body }),
  calls: (readerStudyId) => apiFetch(`/api/v1/calls/?reader_study=${enc(readerStudyId)}&limit=1000`),
  saveCall: (body) => apiFetch('/api/v1/calls/', { method: 'POST', body }),
  lockCall: (id) => apiFetch(`/api/v1/calls/${enc(id)}/lock/`, { method: 'POST' }),
  reviseCall: (id, body) => apiFetch(`/api/v1/calls/${enc(id)}/revise/`, { method: 'POST', body }),
};

// Training runs and model versions (the models page).
export const training = {
  runs: () => apiFetch('/api/v1/training-runs/?limit=20'),
  start: (body) => apiFetch('/api/v1/training-runs/', { method: 'POST', body }),
  cancel: (id) => apiFetch(`/api/v1/training-runs/${enc(id)}/cancel/`, { method: 'POST' }),
  versions: () => apiFetch('/api/v1/model-versions/?limit=50'),
  activate: (id) => apiFetch(`/api/v1/model-versions/${enc(id)}/activate/`, { method: 'POST' }),
};

// A model's output for a lesion: coordinators and admins (readers only in an aided session).
export const modelOutput = {
  // ``readerStudyId``: a reader's aided session (the frozen model version's maps only).
  heatMaps: (lesionId, readerStudyId = null) =>
    apiFetch(
      `/api/v1/lesions/${enc(lesionId)}/heat-maps/${readerStudyId ? `?reader_study=${enc(readerStudyId)}` : ''}`,
    ),
};

/** The list inside a DRF answer, paginated (``results``) or not. */
export function listOf(data) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data.results)) return data.results;
  return [];
}

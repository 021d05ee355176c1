// Comparison page: while a worker computes the analysis, poll its status and reload the
// page once the result is fresh (every 2 s; every 5 s after a failed request).
import { apiFetch } from './api.js';

const computing = document.getElementById('computing');

function poll() {
  apiFetch(computing.dataset.statusUrl)
    .then((status) => {
      if (status.fresh) window.location.reload();
      else setTimeout(poll, 2000);
    })
    .catch(() => setTimeout(poll, 5000));
}

if (computing) poll();

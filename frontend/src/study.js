// The study the case page shows: its series per phase and each phase's instances, asked
// for by the entry module before Cornerstone is loaded (the page preloads the same URLs,
// so the answers are usually there already).
import { archive } from './api.js';
import { PHASES } from './vocabulary.js';

/** Start the API requests of a case (study, then each phase's instances) without waiting for Cornerstone. */
export async function fetchCase(studyInstanceUID) {
  const study = await archive.study(studyInstanceUID);
  performance.mark('case:study');
  const chosen = seriesByPhase(study);
  const instances = Object.fromEntries(
    Object.entries(chosen).map(([phase, series]) => [phase, archive.instances(series.series_instance_uid)]),
  );
  return { study, chosen, instances };
}

/** The series shown for each phase: the one with the most instances. */
export function seriesByPhase(study) {
  const chosen = {};
  for (const series of study.series || []) {
    if (!PHASES.includes(series.phase)) continue;
    const current = chosen[series.phase];
    if (!current || (series.n_instances || 0) > (current.n_instances || 0)) chosen[series.phase] = series;
  }
  return chosen;
}

// The portal's domain words (contrast phases, pathology subtypes, model variants, reading
// sessions), defined once in archive/vocabulary.py and rendered by Django into every page
// (portal/base.html: <script type="application/json" id="vocabulary">), so that the JS keeps
// no copy of its own. Parsed once, when the first module that needs it is loaded.

function readVocabulary() {
  const script = document.getElementById('vocabulary');
  if (!script) throw new Error('this page has no vocabulary (<script id="vocabulary">, portal/base.html)');
  return JSON.parse(script.textContent);
}

/** {phases, phase_labels, subtypes [{value, label, malignant}], malignant_subtypes, variants, sessions, probability_range} */
const vocabulary = readVocabulary();

/** The contrast phases in acquisition order (NC, CM, NG, EX). */
export const PHASES = Object.freeze([...vocabulary.phases]);

/** Whether a pathology subtype is malignant (every RCC), as ``archive.vocabulary.is_malignant``. */
export function isMalignant(subtype) {
  return vocabulary.malignant_subtypes.includes(subtype);
}

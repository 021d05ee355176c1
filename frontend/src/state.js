// The case page's shared state: the values that several of its modules show or act on, each
// set by the module that owns it and followed by the others through ``subscribe``, so that no
// module writes into another's objects.
//
//   selectedLesion  the lesion shown in the forms and highlighted in the list, or null (lesions.js)
//   primaryTool     the Cornerstone tool on the left mouse button; the toolbar follows it (tools.js)
//   callBadges      Map lesion id -> 'locked' | 'draft' | 'not called': the reader's unaided call (case.js)
//   pathology       Map lesion id -> the pathology the lesions API shows this user, or null while
//                   it is blinded (lesions.js; case.js after a lock, which may unblind it)
//   readings        Map lesion id -> the reader's reading schedule of the lesion in a reader study
//                   with an aided session (first session, washout), as the lesions API lists it
const KEYS = new Set(['selectedLesion', 'primaryTool', 'callBadges', 'pathology', 'readings']);

const values = new Map();
const subscribers = new Map([...KEYS].map((key) => [key, new Set()]));

function checked(key) {
  if (!KEYS.has(key)) throw new Error(`unknown case page state "${key}"; expected one of ${[...KEYS].join(', ')}`);
  return key;
}

/** The current value of ``key`` (undefined until it is first set). */
export function get(key) {
  return values.get(checked(key));
}

/**
 * Store ``value`` under ``key`` and call its subscribers with it, in the order they subscribed.
 * Every set notifies, also with the value already there: selecting the selected lesion again
 * shows it again, as a click on it always did.
 */
export function set(key, value) {
  values.set(checked(key), value);
  for (const fn of [...subscribers.get(key)]) fn(value);
}

/** Call ``fn(value)`` on every later ``set`` of ``key``; returns the function that unsubscribes. */
export function subscribe(key, fn) {
  const fns = subscribers.get(checked(key));
  fns.add(fn);
  return () => fns.delete(fn);
}

// Browser stand-in for Node built-ins (fs, path, url, ...) that codec glue and vtk.js
// reference only on their Node code paths, which never run in the browser.
const unavailable = () => {
  throw new Error('Node built-in called in the browser');
};
export default {};
export const readFileSync = unavailable;
export const existsSync = () => false;
export const join = (...parts) => parts.join('/');
export const dirname = (p) => p.replace(/\/[^/]*$/, '');
export const resolve = join;
export const fileURLToPath = (u) => String(u);
export const pathToFileURL = (p) => new URL(p, 'file:///');
export const createRequire = () => unavailable;

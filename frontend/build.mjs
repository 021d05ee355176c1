// Bundles the ES module entry points into Django static files (portal/static/portal/build/).
//
// Entry points: one per page (home, upload, case, worklist, models, comparison) plus the DICOM decode worker,
// which esbuild does not emit by itself (the page registers it before the loader's init).
// The codec .wasm files are copied into build/codecs/ (the loader's wasmBasePath).
// Node built-ins reached from codec glue and vtk.js are aliased to small browser stubs.
//
// The case page's entry is small and loads the rest with dynamic imports: first the viewer
// (Cornerstone core and image loader), then the tools, the lesion panel and the forms.
// build/preload.json names, per page, the files of its first step (the entry, the modules
// in FIRST_STEP and their chunks), which the page's template preloads (modulepreload) so
// that the browser fetches them all at once instead of one import level after another.
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, '../portal/static/portal/build');
const modules = path.join(here, 'node_modules');

const CODECS = {
  'codec-charls': ['charlswasm_decode.wasm'],
  'codec-libjpeg-turbo-8bit': ['libjpegturbowasm_decode.wasm'],
  'codec-openjpeg': ['openjpegwasm_decode.wasm'],
  'codec-openjph': ['openjphjs.wasm'],
  'codec-libjxl': ['jpegxlwasm_decode.wasm'],
};

const PAGES = ['home', 'upload', 'case', 'worklist', 'models', 'comparison'];
const FIRST_STEP = { case: ['src/viewer.js'] };

const nodeStubs = Object.fromEntries(
  ['fs', 'path', 'url', 'events', 'crypto', 'module', 'worker_threads'].flatMap((name) => {
    const stub = path.join(here, 'src/stubs', `${name === 'events' ? 'events' : 'empty'}.js`);
    return [[name, stub], [`node:${name}`, stub]];
  }),
);

// vtk.js's XML poly-data reader is reached only from core's Mesh cache class (surface
// files, which this portal never loads), yet it brings xmlbuilder2 and js-yaml (~300 KB)
// into the first chunk the case page evaluates: a stub stands in for it.
const unusedModules = {
  name: 'unused-modules',
  setup(build) {
    build.onResolve({ filter: /\/IO\/XML\/XMLPolyDataReader\.js$/ }, () => ({ path: path.join(here, 'src/stubs/unused.js') }));
  },
};

fs.rmSync(outdir, { recursive: true, force: true });

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  outdir,
  alias: nodeStubs,
  plugins: [unusedModules],
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'info',
};

// Pages share their code through chunks; the worker is built alone so that no page
// chunk (which may touch `document`) is ever imported into the worker.
const [pages] = await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: Object.fromEntries(PAGES.map((page) => [page, path.join(here, `src/${page}.js`)])),
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
  }),
  esbuild.build({
    ...common,
    entryPoints: {
      decodeImageFrameWorker: path.join(modules, '@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js'),
    },
  }),
]);

/** {page: [files of its first step, relative to the build folder]} from esbuild's metafile. */
function firstSteps(metafile) {
  const outputs = Object.entries(metafile.outputs).filter(([file]) => file.endsWith('.js'));
  const relative = (file) => path.relative(outdir, path.resolve(process.cwd(), file)).split(path.sep).join('/');
  const withStaticImports = (file, files) => {
    if (files.has(file)) return;
    files.add(file);
    for (const imported of metafile.outputs[file].imports) {
      if (imported.kind === 'import-statement') withStaticImports(imported.path, files);
    }
  };
  const entryOf = (module) => outputs.find(([, output]) => output.entryPoint === module)?.[0];
  const steps = {};
  for (const page of PAGES) {
    const files = new Set();
    withStaticImports(entryOf(`src/${page}.js`), files);
    for (const module of FIRST_STEP[page] || []) {
      if (!entryOf(module)) throw new Error(`${module} (first step of ${page}) is not a dynamic import of any page`);
      withStaticImports(entryOf(module), files);
    }
    steps[page] = [...files].map(relative);
  }
  return steps;
}

fs.writeFileSync(path.join(outdir, 'preload.json'), `${JSON.stringify(firstSteps(pages.metafile), null, 1)}\n`);

const codecDir = path.join(outdir, 'codecs');
fs.mkdirSync(codecDir, { recursive: true });
for (const [pkg, files] of Object.entries(CODECS)) {
  for (const file of files) {
    const source = path.join(modules, '@cornerstonejs', pkg, 'dist', file);
    if (fs.existsSync(source)) fs.copyFileSync(source, path.join(codecDir, file));
    else throw new Error(`codec file missing: ${source} (run npm ci)`);
  }
}
console.log(`codecs copied to ${path.relative(process.cwd(), codecDir)}`);

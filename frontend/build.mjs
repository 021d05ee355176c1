// Bundles the ES module entry points into Django static files (portal/static/portal/build/).
//
// Entry points: one per page (upload, case, worklist) plus the DICOM decode worker,
// which esbuild does not emit by itself (the page registers it before the loader's init).
// The codec .wasm files are copied into build/codecs/ (the loader's wasmBasePath).
// Node built-ins reached from codec glue and vtk.js are aliased to small browser stubs.
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

const nodeStubs = Object.fromEntries(
  ['fs', 'path', 'url', 'events', 'crypto', 'module', 'worker_threads'].flatMap((name) => {
    const stub = path.join(here, 'src/stubs', `${name === 'events' ? 'events' : 'empty'}.js`);
    return [[name, stub], [`node:${name}`, stub]];
  }),
);

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
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'info',
};

// Pages share their code through chunks; the worker is built alone so that no page
// chunk (which may touch `document`) is ever imported into the worker.
await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: {
      upload: path.join(here, 'src/upload.js'),
      case: path.join(here, 'src/case.js'),
      worklist: path.join(here, 'src/worklist.js'),
    },
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
  }),
  esbuild.build({
    ...common,
    entryPoints: {
      decodeImageFrameWorker: path.join(modules, '@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js'),
    },
  }),
]);

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

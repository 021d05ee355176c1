// Bundles the ES module entry points into Django static files (portal/static/portal/build/).
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, '../portal/static/portal/build');

await esbuild.build({
  entryPoints: { upload: path.join(here, 'src/upload.js') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  outdir,
  logLevel: 'info',
});

// Runs the reference face engine (face-api 1.7.15 on tfjs 4.22.0 with the
// WebAssembly backend, one thread) on the robustness set that
// `go run ./scripts/perturb` writes, and records its answers. Usage (see
// scripts/robustness.sh, which installs the pinned packages):
//
//   node robustness.mjs --set DIR --models DIR --out FILE [--threshold 0.6]
//
// Every image is small and already a face, so it is described whole (no
// detection), as the Go engine does for such inputs. The gallery is the
// set's original faces; each copy is named after the nearest gallery face by
// Euclidean distance, "unknown" beyond the threshold.
import fs from 'node:fs';
import path from 'node:path';
import { decode, faceapi, parseFlags, setup, tensor, tf } from './reference.mjs';

async function describe(file) {
  const t = tensor(decode(file));
  const d = Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t));
  t.dispose();
  return d;
}

const distance = (a, b) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));
const round4 = (v) => Math.round(v * 1e4) / 1e4;

const args = parseFlags(process.argv.slice(2));
const threshold = Number(args.threshold ?? '0.6');
await setup(args.models, [faceapi.nets.faceRecognitionNet]);

const manifest = JSON.parse(fs.readFileSync(path.join(args.set, 'manifest.json'), 'utf8'));
const gallery = [];
for (const g of manifest.gallery) gallery.push({ person: g.person, d: await describe(path.join(args.set, g.file)) });
const answers = [];
let correct = 0;
for (const c of manifest.copies) {
  const d = await describe(path.join(args.set, c.file));
  let best = { person: 'unknown', dist: Infinity };
  for (const g of gallery) {
    const dist = distance(d, g.d);
    if (dist < best.dist) best = { person: g.person, dist };
  }
  const got = best.dist <= threshold ? best.person : 'unknown';
  if (got === c.person) correct++;
  answers.push({ file: path.basename(c.file), sha256: c.sha256, want: c.person, got, distance: round4(best.dist) });
}
const doc = {
  reference: { faceApi: '1.7.15', tfjs: tf.version.tfjs, backend: tf.getBackend(), threads: 1, whole: true, threshold },
  correct,
  total: answers.length,
  accuracy: round4(correct / answers.length),
  answers,
};
fs.mkdirSync(path.dirname(args.out), { recursive: true });
fs.writeFileSync(args.out, `${JSON.stringify(doc, null, 1)}\n`);
console.log(`reference: ${correct}/${answers.length} right (${(100 * correct / answers.length).toFixed(1)}%), wrote ${args.out}`);

// Runs the reference face engine (face-api 1.7.15 on tfjs 4.22.0 with the
// WebAssembly backend, one thread) and writes what the Go engine is compared
// with. Usage (see scripts/golden.sh, which installs the pinned packages):
//
//   node golden.mjs golden --faces DIR --samples DIR --models DIR --out DIR [--margin 0.2]
//   node golden.mjs bench  --faces DIR --samples DIR --models DIR [--iterations 50]
//
// golden: for every PNG/JPEG in --faces (small images that are one face
// each) and for its mirror image it records the decoded pixels (lossless
// PNG), the whole-image descriptor and the detector's boxes. For every
// sample*.jpg in --samples it records the detector's boxes; for up to two
// faces the crop grown by --margin (PNG) and its descriptor; and face-api's
// own pipeline (detectAllFaces().withFaceLandmarks().withFaceDescriptors()):
// landmarks, the aligned crop, its descriptor, and the pixels of the largest
// face's aligned crop. Images are decoded with jpeg-js / pngjs into
// tf.tensor3d, the path face-api takes in Node without tfjs-node.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PNG, decode, faceapi, parseFlags, setup, tensor, tf } from './reference.mjs';

function writePNG(file, width, height, rgb) {
  const png = new PNG({ width, height, colorType: 2 });
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba[4 * i] = rgb[3 * i];
    rgba[4 * i + 1] = rgb[3 * i + 1];
    rgba[4 * i + 2] = rgb[3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  png.data = rgba;
  fs.writeFileSync(file, PNG.sync.write(png, { colorType: 2 }));
}

function images(dir) {
  return fs.readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => path.join(dir, f));
}

const round6 = (v) => Math.round(v * 1e6) / 1e6;

async function detect(t, opts) {
  const dets = await faceapi.nets.tinyFaceDetector.locateFaces(t, opts);
  return dets.map((d) => ({
    x: round6(d.box.x), y: round6(d.box.y), w: round6(d.box.width), h: round6(d.box.height), score: round6(d.score),
  })).sort((a, b) => b.w * b.h - a.w * a.h);
}

async function describe(t) {
  return Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t));
}

// cropBox is the engine's crop rule: the detector's box grown by margin times
// its size on every side, clamped to the image, in whole pixels.
function cropBox(b, width, height, margin) {
  const x0 = Math.max(0, Math.floor(b.x - margin * b.w));
  const y0 = Math.max(0, Math.floor(b.y - margin * b.h));
  const x1 = Math.min(width, Math.ceil(b.x + b.w + margin * b.w));
  const y1 = Math.min(height, Math.ceil(b.y + b.h + margin * b.h));
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

async function golden(args) {
  const out = args.out;
  const margin = Number(args.margin ?? '0.2');
  fs.mkdirSync(path.join(out, 'pixels'), { recursive: true });
  const opts = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  const cases = [];
  for (const file of images(args.faces)) {
    const img = decode(file);
    const name = path.basename(file).replace(/\.[^.]+$/, '');
    const pixels = `pixels/face-${name}.png`;
    writePNG(path.join(out, pixels), img.width, img.height, img.data);
    const t = tensor(img);
    cases.push({
      kind: 'face', file: path.basename(file), pixels, width: img.width, height: img.height,
      descriptor: (await describe(t)).map(round6), boxes: await detect(t, opts),
    });
    // The mirror image is a second, different input of the same person.
    const m = tf.reverse(t, 1);
    const mpixels = `pixels/face-${name}-mirror.png`;
    writePNG(path.join(out, mpixels), img.width, img.height, await m.data());
    cases.push({
      kind: 'face', file: `${path.basename(file)} (mirrored)`, pixels: mpixels, width: img.width, height: img.height,
      descriptor: (await describe(m)).map(round6), boxes: await detect(m, opts),
    });
    m.dispose();
    t.dispose();
  }
  for (const file of images(args.samples).filter((f) => /^sample/.test(path.basename(f)))) {
    const img = decode(file);
    const name = path.basename(file).replace(/\.[^.]+$/, '');
    const t = tensor(img);
    const boxes = await detect(t, opts);
    const crops = [];
    for (const [i, b] of boxes.slice(0, 2).entries()) {
      const c = cropBox(b, img.width, img.height, margin);
      const crop = tf.slice(t, [c.y, c.x, 0], [c.h, c.w, 3]);
      const pixels = `pixels/${name}-face${i}.png`;
      writePNG(path.join(out, pixels), c.w, c.h, await crop.data());
      crops.push({ box: c, pixels, descriptor: (await describe(crop)).map(round6) });
      crop.dispose();
    }
    // face-api's own pipeline: landmarks on each detection, then the
    // descriptor of the dlib-style aligned box.
    const full = (await faceapi.detectAllFaces(t, opts).withFaceLandmarks().withFaceDescriptors())
      .sort((a, b) => b.detection.box.area - a.detection.box.area);
    const aligned = [];
    for (const [i, r] of full.entries()) {
      const d = r.detection.box;
      // The box ComputeAllFaceDescriptorsTask describes (dlib alignment).
      const a = r.landmarks.align(null, { useDlibAlignment: true }).clipAtImageBorders(img.width, img.height);
      const entry = {
        detection: { x: round6(d.x), y: round6(d.y), w: round6(d.width), h: round6(d.height) },
        landmarks: r.landmarks.positions.map((pt) => [round6(pt.x), round6(pt.y)]),
        crop: { x: a.x, y: a.y, w: a.width, h: a.height },
        descriptor: Array.from(r.descriptor).map(round6),
      };
      if (i === 0) {
        const crop = tf.slice(t, [a.y, a.x, 0], [a.height, a.width, 3]);
        entry.pixels = `pixels/${name}-aligned${i}.png`;
        writePNG(path.join(out, entry.pixels), a.width, a.height, await crop.data());
        crop.dispose();
      }
      aligned.push(entry);
    }
    cases.push({ kind: 'photo', file: path.basename(file), width: img.width, height: img.height, boxes, crops, aligned });
    t.dispose();
  }
  const doc = {
    reference: {
      faceApi: '1.7.15', tfjs: tf.version.tfjs, backend: tf.getBackend(), threads: 1,
      detector: { inputSize: 416, scoreThreshold: 0.5 }, cropMargin: margin,
    },
    cases,
  };
  fs.writeFileSync(path.join(out, 'golden.json'), `${JSON.stringify(doc, null, 1)}\n`);
  console.log(`wrote ${cases.length} cases to ${out}`);
}

// bench prints milliseconds per descriptor (150x150 net on each face image)
// and per detection (416 input on each sample photo), wall and CPU time of
// the process, as JSON on one line.
async function bench(args) {
  const n = Number(args.iterations ?? '50');
  const opts = new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 });
  const faces = images(args.faces).map(decode).map(tensor);
  const photos = images(args.samples).filter((f) => /^sample/.test(path.basename(f))).map(decode).map(tensor);
  for (const t of faces.slice(0, 3)) await describe(t); // warm up
  await detect(photos[0], opts);
  const cpuMs = (u) => (u.user + u.system) / 1000;
  let t0 = performance.now();
  let c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await describe(faces[i % faces.length]);
  const describeMs = (performance.now() - t0) / n;
  const describeCpuMs = cpuMs(process.cpuUsage(c0)) / n;
  const m = Math.max(5, Math.floor(n / 5));
  t0 = performance.now();
  c0 = process.cpuUsage();
  for (let i = 0; i < m; i++) await detect(photos[i % photos.length], opts);
  const detectMs = (performance.now() - t0) / m;
  const detectCpuMs = cpuMs(process.cpuUsage(c0)) / m;
  console.log(JSON.stringify({
    describeMs, describeCpuMs, detectMs, detectCpuMs, backend: tf.getBackend(), threads: 1,
  }));
}

const args = { cmd: process.argv[2], ...parseFlags(process.argv.slice(3)) };
await setup(args.models, [faceapi.nets.tinyFaceDetector, faceapi.nets.faceRecognitionNet, faceapi.nets.faceLandmark68Net]);
if (args.cmd === 'golden') await golden(args);
else if (args.cmd === 'bench') await bench(args);
else throw new Error(`unknown command ${args.cmd} (golden or bench)`);

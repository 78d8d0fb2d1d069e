// What the reference scripts (golden.mjs, robustness.mjs) share: the pinned
// packages, argument parsing, image decoding and the one-thread WebAssembly
// back end.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
export const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const jpeg = require('jpeg-js');
const { PNG } = require('pngjs');
export { PNG };

// parseFlags reads `--name value` pairs into an object.
export function parseFlags(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  return args;
}

// decode returns {width, height, data: Uint8Array RGB} of a PNG or JPEG
// file, decoded with pngjs / jpeg-js, the path face-api takes in Node
// without tfjs-node.
export function decode(file) {
  const buf = fs.readFileSync(file);
  let img;
  if (buf[0] === 0x89 && buf[1] === 0x50) {
    img = PNG.sync.read(buf);
  } else {
    img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true });
  }
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0, j = 0; i < img.width * img.height; i++, j += 4) {
    rgb[3 * i] = img.data[j];
    rgb[3 * i + 1] = img.data[j + 1];
    rgb[3 * i + 2] = img.data[j + 2];
  }
  return { width: img.width, height: img.height, data: rgb };
}

// tensor is a decoded image as the int32 [h, w, 3] tensor face-api takes.
export const tensor = (img) => tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');

// setup selects the WebAssembly back end on one thread and loads the given
// nets (members of faceapi.nets) from the models directory.
export async function setup(models, nets) {
  wasm.setThreadsCount(1);
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  await tf.setBackend('wasm');
  await tf.ready();
  for (const net of nets) await net.loadFromDisk(models);
}

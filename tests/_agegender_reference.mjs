// The age/gender network as @vladmandic/face-api runs it (its own ESM bundle, tfjs's CPU backend), for
// tests/test_agegender.py: node _agegender_reference.mjs MODEL_DIR INPUT.bin N OUT.json
// MODEL_DIR holds face-api.esm.js and the model's manifest and weights (curate/embed/agegender_models.py installs them);
// INPUT.bin is N x 112 x 112 x 3 float32 RGB (0-255). OUT.json: [{age, male}] (male = p(male)).
import fs from 'fs';

const [dir, input, count, output] = process.argv.slice(2);
globalThis.window = globalThis; // tfjs then takes the browser platform (fetch, TextEncoder): its Node one needs tfjs-node
globalThis.document = {};
const faceapi = await import(dir + '/face-api.esm.js');
const tf = faceapi.tf;
await tf.setBackend('cpu');
await tf.ready();
const manifest = JSON.parse(fs.readFileSync(dir + '/age_gender_model-weights_manifest.json'));
const bin = fs.readFileSync(dir + '/age_gender_model.bin');
const weights = tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength), manifest[0].weights);
faceapi.nets.ageGenderNet.loadFromWeightMap(weights);
const n = parseInt(count, 10);
const size = 112 * 112 * 3;
const buf = fs.readFileSync(input);
const data = new Float32Array(buf.buffer, buf.byteOffset, n * size);
const out = [];
for (let i = 0; i < n; i++) {
  const t = tf.tensor3d(data.slice(i * size, (i + 1) * size), [112, 112, 3]);
  const r = await faceapi.nets.ageGenderNet.forward(t);
  out.push({ age: (await r.age.data())[0], male: (await r.gender.data())[0] });
}
fs.writeFileSync(output, JSON.stringify(out));

// Codec cost of the message every node sends every second: msgpack + schema validation vs plain JSON.
import { decodeMessage, encodeMessage, sampleAdvert } from '@hermes-mesh/protocol';
import { report } from './report.js';

const advert = sampleAdvert();
const from = advert.nodeId;

function opsPerSecond(fn: () => void, minMs = 1_000): number {
  for (let i = 0; i < 2_000; i++) fn(); // warm-up
  let ops = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    for (let i = 0; i < 1_000; i++) fn();
    ops += 1_000;
  }
  return ops / ((performance.now() - start) / 1000);
}

let sink = 0;
const codec = opsPerSecond(() => {
  const decoded = decodeMessage(encodeMessage('advert', from, 1, advert));
  if (decoded.ok) sink++;
});
const json = opsPerSecond(() => {
  const decoded = JSON.parse(JSON.stringify({ v: 1, kind: 'advert', from, seq: 1, ts: 1, body: advert }));
  if (decoded.v === 1) sink++;
});
const size = encodeMessage('advert', from, 1, advert).length;
const jsonSize = Buffer.byteLength(JSON.stringify({ v: 1, kind: 'advert', from, seq: 1, ts: 1, body: advert }));
report('codec', 'advert_encode_decode_validate', codec, 'ops/s', {
  anchor: 'JSON.stringify+parse, same object, same run',
});
report('codec', 'advert_json_roundtrip_no_validation', json, 'ops/s');
report('codec', 'advert_codec_vs_json', codec / json, 'ratio');
report('codec', 'advert_bytes', size, 'bytes', { json_bytes: jsonSize });
if (sink === 0) throw new Error('nothing decoded');

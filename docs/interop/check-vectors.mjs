// An independent implementation of docs/PROTOCOL.md in JavaScript, written
// from the document alone: it rebuilds every vector from its fields and seed
// and checks the encoding, signature, ID and proof of work.
//
//   cd docs/interop && npm install && node check-vectors.mjs ../PROTOCOL.md
import { readFileSync } from "node:fs";
import * as ed from "@noble/ed25519";
import { sha512 } from "@noble/hashes/sha512";
import { blake3 } from "@noble/hashes/blake3";

ed.etc.sha512Sync = (...m) => sha512(ed.etc.concatBytes(...m));

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));
const u64 = (n) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n)); return b; };
const u16 = (n) => { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, n); return b; };
const cat = (...a) => ed.etc.concatBytes(...a);

function networkId(name) {
  return blake3(new TextEncoder().encode("weft network " + name)).slice(0, 8);
}
function leadingZeros(h) {
  let n = 0;
  for (const byte of h) {
    if (byte === 0) { n += 8; continue; }
    return n + Math.clz32(byte) - 24;
  }
  return n;
}
function difficulty(size, base) {
  const blocks = Math.max(1, Math.ceil(size / 256));
  return base + Math.ceil(Math.log2(blocks));
}

const doc = readFileSync(process.argv[2] ?? "../PROTOCOL.md", "utf8");
const blocks = [...doc.matchAll(/```vector\n([\s\S]*?)```/g)].map((m) =>
  Object.fromEntries(m[1].trim().split("\n").map((l) => { const i = l.indexOf(":"); return [l.slice(0, i).trim(), l.slice(i + 1).trim()]; })));

let failed = 0, bad = false;
const check = (v, what, got, want) => {
  if (got !== want) { bad = true; console.log(`FAIL ${v.name}: ${what}\n  got  ${got}\n  want ${want}`); }
};
for (const v of blocks) {
  const net = networkId(v.network);
  check(v, "network id", hex(net), v.network_id);
  let enc;
  if (v.name === "genesis") {
    enc = cat(new Uint8Array([1]), net, new Uint8Array(64 + 32 + 8 + 8 + 2 + 64 + 8));
  } else {
    const seed = unhex(v.seed);
    const pub = ed.getPublicKey(seed);
    check(v, "issuer", hex(pub), v.issuer);
    const payload = unhex(v.payload);
    const signed = cat(new Uint8Array([1]), net, unhex(v.parent0), unhex(v.parent1), pub,
      u64(v.seq), u64(v.timestamp), u16(payload.length), payload);
    check(v, "signed bytes", hex(signed), v.signed);
    const sig = ed.sign(signed, seed);
    check(v, "signature", hex(sig), v.signature);
    enc = cat(signed, sig, u64(v.nonce));
    const d = difficulty(enc.length, Number(v.pow_base));
    check(v, "difficulty", String(d), v.difficulty);
    if (leadingZeros(blake3(enc)) < d) { bad = true; console.log(`FAIL ${v.name}: proof of work`); }
  }
  check(v, "encoding", hex(enc), v.encoding);
  check(v, "id", hex(blake3(enc)), v.id);
  console.log(`${v.name}: ${bad ? "FAILED" : "ok"}`);
  if (bad) failed++;
  bad = false;
}
console.log(`${blocks.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

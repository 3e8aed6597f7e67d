// An independent verifier of Weft proofs in JavaScript, written from
// docs/PROTOCOL.md section 8 alone: it checks every proof vector, and that
// a changed byte of its message, a path or a checkpoint's signature fails.
//
//   cd docs/interop && npm install && node verify-proof.mjs ../PROTOCOL.md
import { readFileSync } from "node:fs";
import * as ed from "@noble/ed25519";
import { sha512 } from "@noble/hashes/sha512";
import { blake3 } from "@noble/hashes/blake3";

ed.etc.sha512Sync = (...m) => sha512(ed.etc.concatBytes(...m));

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));
const cat = (...a) => ed.etc.concatBytes(...a);
const be = (b, off, n) => { let v = 0n; for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(b[off + i]); return v; };

// A message (section 1): its fields, or an exception.
function decode(enc) {
  if (enc.length < 195 || enc[0] !== 1) throw new Error("not a message");
  const n = Number(be(enc, 121, 2));
  if (enc.length !== 195 + n) throw new Error("bad length");
  return {
    network: hex(enc.slice(1, 9)), issuer: enc.slice(73, 105), timestamp: be(enc, 113, 8),
    payload: enc.slice(123, 123 + n), signed: enc.slice(0, 123 + n), signature: enc.slice(123 + n, 187 + n),
  };
}
const leaf = (id) => blake3(cat(new Uint8Array([0]), id));
const inner = (l, r) => blake3(cat(new Uint8Array([1]), l, r));

// Section 8.3's inclusion check.
function pathOK(id, m, n, path, root) {
  if (m >= n) return false;
  let fn = m, sn = n - 1n, r = leaf(id);
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = inner(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = inner(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n && hex(r) === hex(root);
}

// Section 8.4: the reason the proof fails, or null when it holds.
function verify(d, networkName, validators, num = 2n, den = 3n) {
  const net = hex(blake3(new TextEncoder().encode("weft network " + networkName)).slice(0, 8));
  if (d.version !== 1) return "version";
  const enc = unhex(d.message);
  let m;
  try { m = decode(enc); } catch (e) { return "message: " + e.message; }
  if (hex(blake3(enc)) !== d.id) return "message: ID";
  if (m.network !== net) return "message: network";
  if (!ed.verify(m.signature, m.signed, m.issuer)) return "message: signature";
  const seen = new Set();
  let weight = 0n, total = 0n;
  for (const w of validators.values()) total += w;
  for (const [i, a] of d.checkpoints.entries()) {
    if (!validators.has(a.validator)) return `checkpoint ${i}: not a validator`;
    const cenc = unhex(a.checkpoint);
    let c;
    try { c = decode(cenc); } catch (e) { return `checkpoint ${i}: ${e.message}`; }
    if (hex(blake3(cenc)) !== a.id) return `checkpoint ${i}: ID`;
    if (hex(c.issuer) !== a.validator) return `checkpoint ${i}: issuer`;
    if (c.network !== net) return `checkpoint ${i}: network`;
    if (!ed.verify(c.signature, c.signed, c.issuer)) return `checkpoint ${i}: signature`;
    const p = c.payload;
    if (p.length !== 88 || hex(p.slice(0, 4)) !== "57435001") return `checkpoint ${i}: not a checkpoint`;
    const index = be(p, 4, 8), prevZero = p.slice(12, 44).every((b) => b === 0);
    const from = be(p, 44, 8), count = be(p, 52, 4), root = p.slice(56, 88);
    if (index === 0n || (index === 1n) !== prevZero || from >= 1n << 63n || count === 0n) return `checkpoint ${i}: bad payload`;
    if (m.timestamp < from || m.timestamp > c.timestamp) return `checkpoint ${i}: out of range`;
    if (!pathOK(unhex(d.id), BigInt(a.leaf), count, a.path.map(unhex), root)) return `checkpoint ${i}: path`;
    if (!seen.has(a.validator)) { seen.add(a.validator); weight += validators.get(a.validator); }
  }
  if (weight < (total * num + den - 1n) / den) return "below the threshold";
  return null;
}

const doc = readFileSync(process.argv[2] ?? "../PROTOCOL.md", "utf8");
const blocks = [...doc.matchAll(/```proof-vector\n([\s\S]*?)```/g)].map((m) =>
  Object.fromEntries(m[1].trim().split("\n").map((l) => { const i = l.indexOf(":"); return [l.slice(0, i).trim(), l.slice(i + 1).trim()]; })));
let failed = 0;
for (const v of blocks) {
  const [key, w] = v.validator.split(":");
  const vals = new Map([[key, BigInt(w)]]);
  const good = JSON.parse(v.document);
  const changed = (f) => { const d = structuredClone(good); f(d); return d; };
  const flip = (s, at) => s.slice(0, 2 * at) + ((parseInt(s.slice(2 * at, 2 * at + 2), 16) ^ 1).toString(16).padStart(2, "0")) + s.slice(2 * at + 2);
  const cases = [
    ["the vector", good, null],
    ["a payload byte", changed((d) => { d.message = flip(d.message, 123); }), "message: ID"],
    ["a path byte", changed((d) => { d.checkpoints[0].path[0] = flip(d.checkpoints[0].path[0], 5); }), "checkpoint 0: path"],
    ["a checkpoint's signature", changed((d) => {
      const c = d.checkpoints[0];
      c.checkpoint = flip(c.checkpoint, c.checkpoint.length / 2 - 9);
      c.id = hex(blake3(unhex(c.checkpoint)));
    }), "checkpoint 0: signature"],
    ["another network", good, "message: network", "weft-other"],
    ["no checkpoints", changed((d) => { d.checkpoints = []; }), "below the threshold"],
  ];
  for (const [name, d, want, net] of cases) {
    const got = verify(d, net ?? v.network, vals);
    const ok = got === want;
    console.log(`${v.name}, ${name}: ${ok ? "ok" : `FAIL: got ${got}, want ${want}`}`);
    if (!ok) failed++;
  }
}
console.log(`${blocks.length} proof vectors, ${failed} failures`);
process.exit(failed || blocks.length === 0 ? 1 : 0);

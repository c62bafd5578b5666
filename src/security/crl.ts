/**
 * The revoked serials of an X.509 CRL (PEM or DER), read with a minimal DER walker —
 * node:crypto has no CRL parser — and, given the CA, checked against the CA's signature
 * (ECDSA or RSA with SHA-256/384/512).
 * @module
 */
import { Buffer } from "node:buffer";
import { verify, X509Certificate } from "node:crypto";

interface Tlv {
  tag: number;
  /** First content byte. */
  start: number;
  /** One past the last content byte. */
  end: number;
  /** First byte of the tag (for the raw encoding). */
  from: number;
}

function tlv(b: Uint8Array, off: number): Tlv {
  if (off + 2 > b.length) throw new RangeError("CRL is truncated");
  const tag = b[off];
  let len = b[off + 1];
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new RangeError("CRL has an unsupported length");
    if (start + n > b.length) throw new RangeError("CRL is truncated");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i];
    start += n;
  }
  const end = start + len;
  if (end > b.length) throw new RangeError("CRL is truncated");
  return { tag, start, end, from: off };
}

function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = t.start; off < t.end;) {
    const c = tlv(b, off);
    out.push(c);
    off = c.end;
  }
  return out;
}

const HASH_OF_OID: Record<string, string> = {
  "2a8648ce3d040302": "sha256", // ecdsa-with-SHA256
  "2a8648ce3d040303": "sha384",
  "2a8648ce3d040304": "sha512",
  "2a864886f70d01010b": "sha256", // sha256WithRSAEncryption
  "2a864886f70d01010c": "sha384",
  "2a864886f70d01010d": "sha512",
};

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** DER bytes of a PEM CRL, or the bytes themselves when they are DER already. */
function der(input: string | Uint8Array): Uint8Array {
  const text = typeof input === "string" ? input : new TextDecoder().decode(input);
  const m = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/.exec(text);
  if (m) return Buffer.from(m[1].replace(/\s+/g, ""), "base64");
  if (typeof input === "string") throw new RangeError("Not a PEM CRL");
  return input;
}

/** True when `input` looks like a CRL (PEM header, or DER starting with a SEQUENCE). */
export function looksLikeCrl(input: string): boolean {
  return input.includes("-----BEGIN X509 CRL-----");
}

/**
 * The revoked serial numbers (upper-case hex, no leading zeros) of a CRL. With `caPem`, the
 * CRL's signature must verify against the CA's key, else it throws.
 */
export function crlSerials(input: string | Uint8Array, caPem?: string): string[] {
  const b = der(input);
  const top = tlv(b, 0);
  const [tbs, alg, sig] = children(b, top);
  if (!tbs || !alg || !sig || tbs.tag !== 0x30 || sig.tag !== 0x03) {
    throw new RangeError("Not an X.509 CRL");
  }
  if (caPem !== undefined) {
    const oid = children(b, alg)[0];
    const hash = oid ? HASH_OF_OID[hex(b.subarray(oid.start, oid.end))] : undefined;
    if (!hash) throw new RangeError("CRL signature algorithm is not supported");
    const key = new X509Certificate(caPem).publicKey;
    const ok = verify(hash, b.subarray(tbs.from, tbs.end), key, b.subarray(sig.start + 1, sig.end));
    if (!ok) throw new RangeError("CRL signature does not verify against TWINMILL_TLS_CA");
  }
  const fields = children(b, tbs);
  let i = fields[0]?.tag === 0x02 ? 1 : 0; // optional version
  i += 2; // signature algorithm, issuer
  i += 1; // thisUpdate
  if (fields[i] && (fields[i].tag === 0x17 || fields[i].tag === 0x18)) i++; // nextUpdate
  const revoked = fields[i];
  if (!revoked || revoked.tag !== 0x30) return []; // none revoked (or only extensions)
  const out: string[] = [];
  for (const entry of children(b, revoked)) {
    const serial = children(b, entry)[0];
    if (!serial || serial.tag !== 0x02) throw new RangeError("CRL entry without a serial");
    out.push(hex(b.subarray(serial.start, serial.end)).toUpperCase().replace(/^0+(?=.)/, ""));
  }
  return out;
}

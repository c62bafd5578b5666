/**
 * The Ed25519 public keys firmware signatures are checked with (`TWINMILL_FIRMWARE_KEYS`), and
 * the check: a base64 signature over an image's 32-byte SHA-256 digest.
 * @module
 */
import { basename, extname } from "node:path";
import { FirmwareSignatureError } from "./firmware_types.ts";

/** A configured Ed25519 public key. */
export interface FirmwareKey {
  /** The key file's base name without extension (`vendor.pem` → `vendor`). */
  name: string;
  key: CryptoKey;
}

/** The name a key file gives its key. */
export function keyName(file: string): string {
  return basename(file, extname(file));
}

/** Import an Ed25519 public key from PEM (`-----BEGIN PUBLIC KEY-----`, SPKI). */
async function importEd25519PublicKey(pem: string): Promise<CryptoKey> {
  const m = /-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----/.exec(pem);
  if (!m) throw new Error("not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  const der = Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (ch) => ch.charCodeAt(0));
  return await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]);
}

/** Load the keys of `TWINMILL_FIRMWARE_KEYS` (PEM files). */
export async function loadFirmwareKeys(files: string[]): Promise<FirmwareKey[]> {
  const out: FirmwareKey[] = [];
  for (const file of files) {
    try {
      out.push({
        name: keyName(file),
        key: await importEd25519PublicKey(await Deno.readTextFile(file)),
      });
    } catch (err) {
      throw new Error(`Cannot load firmware key "${file}": ${(err as Error).message}`);
    }
  }
  return out;
}

/** A base64 Ed25519 signature (64 bytes). */
export function decodeSignature(s: string): Uint8Array<ArrayBuffer> {
  const t = s.trim();
  let bytes: Uint8Array<ArrayBuffer> | undefined;
  if (/^[A-Za-z0-9+/]{86}==$/.test(t)) {
    bytes = Uint8Array.from(atob(t), (ch) => ch.charCodeAt(0));
  }
  if (!bytes || bytes.length !== 64) {
    throw new FirmwareSignatureError(
      "X-Firmware-Signature must be a base64 Ed25519 signature (64 bytes, 88 characters)",
    );
  }
  return bytes;
}

/** The name of the first key `signature` verifies with over `digest`, or undefined. */
export async function verifySignature(
  keys: FirmwareKey[],
  signature: Uint8Array<ArrayBuffer>,
  digest: Uint8Array<ArrayBuffer>,
): Promise<string | undefined> {
  for (const k of keys) {
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, k.key, signature, digest);
    if (ok) return k.name;
  }
  return undefined;
}

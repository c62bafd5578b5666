/**
 * Variables that hold lists: API keys (`TWINMILL_API_KEYS`) and firmware public key files
 * (`TWINMILL_FIRMWARE_KEYS`). Each throws a {@linkcode ConfigError} naming its variable.
 * @module
 */
import { createPublicKey } from "node:crypto";
import { basename, extname } from "node:path";
import { type Role, ROLES } from "../security/principal.ts";
import { ConfigError } from "./config_error.ts";

/**
 * `key:role` or `key:role:site` entries, comma separated. Keys are at least 16 characters of
 * `A-Z a-z 0-9 _ - .`; the error never repeats a key.
 */
export function parseApiKeys(v: string | undefined): Map<string, { role: Role; site?: string }> {
  const out = new Map<string, { role: Role; site?: string }>();
  if (!v) return out;
  for (const [i, raw] of v.split(",").entries()) {
    const entry = raw.trim();
    if (!entry) continue;
    const [key, role, site, ...rest] = entry.split(":");
    const where = `entry ${i + 1}`;
    if (!/^[A-Za-z0-9_.-]{16,}$/.test(key ?? "")) {
      throw new ConfigError(
        "TWINMILL_API_KEYS",
        `${where}: a key must be at least 16 of A-Z a-z 0-9 _ - .`,
      );
    }
    if (!(ROLES as readonly string[]).includes(role ?? "")) {
      throw new ConfigError(
        "TWINMILL_API_KEYS",
        `${where}: role must be viewer, operator or admin`,
      );
    }
    if (rest.length > 0 || site === "") {
      throw new ConfigError("TWINMILL_API_KEYS", `${where}: use key:role or key:role:site`);
    }
    if (out.has(key)) throw new ConfigError("TWINMILL_API_KEYS", `${where}: key given twice`);
    out.set(key, site === undefined ? { role: role as Role } : { role: role as Role, site });
  }
  return out;
}

/**
 * `TWINMILL_FIRMWARE_KEYS`: comma-separated PEM files, each an Ed25519 public key; a key's name
 * is its file's base name, so names must differ.
 */
export function firmwareKeys(v: string | undefined): string[] {
  const files = (v ?? "").split(",").map((f) => f.trim()).filter(Boolean);
  const names = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      throw new ConfigError("TWINMILL_FIRMWARE_KEYS", `cannot read file "${file}"`);
    }
    let type: string | undefined;
    try {
      // a private key would parse too: only the public half belongs on the node
      if (text.includes("-----BEGIN PUBLIC KEY-----")) {
        type = createPublicKey(text).asymmetricKeyType;
      }
    } catch {
      type = undefined;
    }
    if (type !== "ed25519") {
      throw new ConfigError(
        "TWINMILL_FIRMWARE_KEYS",
        `"${file}" is not an Ed25519 public key in PEM (openssl pkey -pubout)`,
      );
    }
    const name = basename(file, extname(file));
    if (names.has(name)) {
      throw new ConfigError("TWINMILL_FIRMWARE_KEYS", `two key files are named "${name}"`);
    }
    names.add(name);
  }
  return files;
}

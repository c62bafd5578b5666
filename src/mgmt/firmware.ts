/**
 * Firmware images: metadata (a document per image, kind `firmware`) and the image bytes in a
 * {@linkcode BlobStore} — a directory under the data dir (single node) or a JetStream object
 * store (cluster mode). Uploads are streamed and hashed (SHA-256) on the way to the store and
 * bounded in size; an optional Ed25519 signature over the 32-byte digest is verified against
 * the configured public keys, so devices can check what they install with the same key.
 *
 * An upload goes to a fresh blob key; the image becomes visible only when its document is
 * created (create-only), so a refused or concurrent upload never replaces a stored image, and
 * a crash mid-upload leaves at most an orphan blob that {@linkcode FirmwareImages.sweep}
 * removes.
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { BadRequestError, UnavailableError } from "../errors.ts";
import type { DocStore, DocStores } from "../persistence/doc_store.ts";
import type { Logger } from "../obs/log.ts";
import type { BlobStore } from "./firmware_blobs.ts";
import {
  FIRMWARE_ID_RE,
  FirmwareExistsError,
  type FirmwareMeta,
  type FirmwareService,
  FirmwareSignatureError,
  FirmwareStoreFullError,
  FirmwareTooLargeError,
  type StoredFirmware,
} from "./firmware_types.ts";
import {
  decodeSignature,
  type FirmwareKey,
  loadFirmwareKeys,
  verifySignature,
} from "./firmware_keys.ts";

/** A name or version: 1–63 of `A-Z a-z 0-9 _ - .`, starting with a letter or digit. */
const FIRMWARE_PART_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Options of {@linkcode FirmwareImages}. */
export interface FirmwareOptions {
  docs: DocStore<StoredFirmware>;
  blobs: BlobStore;
  /** Public keys signatures are verified against (none: signed uploads are refused). */
  keys: FirmwareKey[];
  /** Largest image in bytes. */
  maxBytes: number;
  /** Refuse unsigned images. */
  requireSigned: boolean;
  /** Largest total of stored images in bytes. */
  storeMaxBytes: number;
  /** Most images stored. Default 1000. */
  maxImages?: number;
  /** Uploads at once on this node. Default 4. */
  maxUploads?: number;
  clock?: { now(): number };
  logger: Logger;
}

/** What an upload brings. */
export interface FirmwareUpload {
  name: string;
  version: string;
  body: ReadableStream<Uint8Array>;
  /** Base64 Ed25519 signature over the image's SHA-256 digest. */
  signature?: string;
  contentType?: string;
  /** The declared body size, when the client sent one (refused early when too large). */
  contentLength?: number;
}

/** The metadata of a stored image (without its blob key). */
function metaOf(s: StoredFirmware): FirmwareMeta {
  const { blob: _, ...meta } = s;
  return meta;
}

/** Firmware images: upload, list, read by range, delete. */
export class FirmwareImages implements FirmwareService {
  readonly #o: FirmwareOptions;
  #uploads = 0;
  /** Bytes of uploads in progress on this node (counted against the store bound). */
  #inFlight = 0;

  constructor(o: FirmwareOptions) {
    this.#o = o;
  }

  /** Where images are checked against (for logs and docs). */
  get keyNames(): string[] {
    return this.#o.keys.map((k) => k.name);
  }

  /** The stored document of an image (with its blob key), or null. */
  async stored(id: string): Promise<StoredFirmware | null> {
    if (!FIRMWARE_ID_RE.test(id)) return null;
    return (await this.#o.docs.get(id))?.value ?? null;
  }

  async get(id: string): Promise<FirmwareMeta | null> {
    const s = await this.stored(id);
    return s ? metaOf(s) : null;
  }

  /** Every image, in id order. */
  async list(): Promise<FirmwareMeta[]> {
    return (await this.#o.docs.list()).map((d) => metaOf(d.value));
  }

  /**
   * Stream an image into the store while hashing it; verify its signature; record it.
   * Nothing is kept when anything fails.
   */
  async upload(u: FirmwareUpload): Promise<FirmwareMeta> {
    const o = this.#o;
    if (!FIRMWARE_PART_RE.test(u.name)) {
      throw new BadRequestError(
        `name must be 1-63 of A-Z a-z 0-9 _ - . starting with a letter or digit`,
        "bad_firmware_name",
      );
    }
    if (!FIRMWARE_PART_RE.test(u.version)) {
      throw new BadRequestError(
        `version must be 1-63 of A-Z a-z 0-9 _ - . starting with a letter or digit`,
        "bad_firmware_version",
      );
    }
    const id = `${u.name}-${u.version}`;
    const signature = u.signature === undefined ? undefined : decodeSignature(u.signature);
    if (signature && o.keys.length === 0) {
      throw new BadRequestError(
        "The image is signed but no firmware keys are configured (TWINMILL_FIRMWARE_KEYS)",
        "firmware_signing_not_configured",
      );
    }
    if (!signature && o.requireSigned) {
      throw new BadRequestError(
        "Unsigned images are refused (TWINMILL_FIRMWARE_REQUIRE_SIGNED): send X-Firmware-Signature",
        "firmware_signature_required",
      );
    }
    if (u.contentLength !== undefined && u.contentLength > o.maxBytes) {
      throw new FirmwareTooLargeError(o.maxBytes);
    }
    const existing = await o.docs.get(id);
    if (existing) throw new FirmwareExistsError(id, existing.value);
    const all = await o.docs.list();
    if (all.length >= (o.maxImages ?? 1000)) {
      throw new FirmwareStoreFullError(`${all.length} images stored, the most there may be`);
    }
    if (this.#uploads >= (o.maxUploads ?? 4)) {
      throw new UnavailableError(
        "firmware_upload_busy",
        `${this.#uploads} uploads are in progress on this node; retry later`,
      );
    }
    const stored = all.reduce((n, d) => n + d.value.size, 0);
    const hash = createHash("sha256");
    let size = 0;
    let reserved = 0;
    const counted = u.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, c) => {
          size += chunk.length;
          if (size > o.maxBytes) throw new FirmwareTooLargeError(o.maxBytes);
          this.#inFlight += chunk.length;
          reserved += chunk.length;
          if (stored + this.#inFlight > o.storeMaxBytes) {
            throw new FirmwareStoreFullError(
              `images would take more than ${o.storeMaxBytes} bytes ` +
                "(TWINMILL_FIRMWARE_STORE_MAX_BYTES)",
            );
          }
          hash.update(chunk);
          c.enqueue(chunk);
        },
        flush: () => {
          if (size === 0) throw new BadRequestError("The image is empty", "firmware_empty");
        },
      }),
    );
    const blob = `${id}.${randomBytes(6).toString("hex")}`;
    this.#uploads++;
    let kept = false;
    try {
      await o.blobs.put(blob, counted);
      const digest = hash.digest();
      let signedBy: string | undefined;
      if (signature) {
        signedBy = await verifySignature(o.keys, signature, new Uint8Array(digest));
        if (!signedBy) {
          throw new FirmwareSignatureError(
            `The signature does not verify with any configured key (${
              this.keyNames.join(", ")
            }): ` +
              "sign the SHA-256 digest of the image with Ed25519",
          );
        }
      }
      const doc: StoredFirmware = {
        id,
        name: u.name,
        version: u.version,
        size,
        sha256: digest.toString("hex"),
        ...(signature ? { signature: u.signature!.trim(), signedBy } : {}),
        createdAt: (o.clock ?? Date).now(),
        ...(u.contentType ? { contentType: u.contentType } : {}),
        blob,
      };
      if (!(await o.docs.put(id, doc, null))) throw new FirmwareExistsError(id);
      kept = true;
      o.logger.info("firmware stored", { id, size, sha256: doc.sha256, signedBy });
      return metaOf(doc);
    } finally {
      this.#uploads--;
      this.#inFlight -= reserved;
      if (!kept) {
        await o.blobs.delete(blob).catch((err) =>
          o.logger.warn("cannot delete the blob of a refused upload", { blob, err })
        );
      }
    }
  }

  /** Bytes `start..end` (inclusive) of an image; null when it is gone (deleted meanwhile). */
  read(s: StoredFirmware, start: number, end: number): Promise<ReadableStream<Uint8Array> | null> {
    return this.#o.blobs.read(s.blob, start, end);
  }

  /** Delete an image; false when there is none with this id. */
  async delete(id: string): Promise<boolean> {
    const s = await this.stored(id);
    if (!s) return false;
    if (!(await this.#o.docs.delete(id))) return false;
    await this.#o.blobs.delete(s.blob).catch((err) =>
      this.#o.logger.warn("cannot delete a firmware blob; a sweep will", { blob: s.blob, err })
    );
    this.#o.logger.info("firmware deleted", { id });
    return true;
  }

  /**
   * Delete blobs no image refers to that are older than `olderThanMs` (uploads cut short by a
   * crash). Returns how many.
   */
  async sweep(olderThanMs = 3_600_000): Promise<number> {
    const o = this.#o;
    const used = new Set((await o.docs.list()).map((d) => d.value.blob));
    const before = (o.clock ?? Date).now() - olderThanMs;
    let n = 0;
    for (const b of await o.blobs.list()) {
      if (used.has(b.key) || b.mtime > before) continue;
      if (await o.blobs.delete(b.key).catch(() => false)) n++;
    }
    if (n > 0) o.logger.info("orphan firmware blobs removed", { count: n });
    return n;
  }
}

/** What {@linkcode openFirmware} needs: the node's settings and stores. */
export interface OpenFirmwareOptions {
  docs: DocStores;
  /** Where image bytes go: a directory (single node) or the object store (cluster mode). */
  blobs: BlobStore;
  maxBytes: number;
  storeMaxBytes: number;
  keyFiles: string[];
  requireSigned: boolean;
  logger: Logger;
}

/**
 * The node's firmware images: metadata in `docs` (kind `firmware`), bytes in `blobs`;
 * orphans of crashed uploads swept.
 */
export async function openFirmware(o: OpenFirmwareOptions): Promise<FirmwareImages> {
  const keys = await loadFirmwareKeys(o.keyFiles);
  const fw = new FirmwareImages({
    docs: await o.docs.open<StoredFirmware>("firmware"),
    blobs: o.blobs,
    keys,
    maxBytes: o.maxBytes,
    storeMaxBytes: o.storeMaxBytes,
    requireSigned: o.requireSigned,
    logger: o.logger,
  });
  if (keys.length > 0) o.logger.info("firmware keys loaded", { keys: fw.keyNames });
  await fw.sweep().catch((err) => o.logger.warn("cannot sweep orphan firmware blobs", { err }));
  return fw;
}

/**
 * Firmware images: metadata (a document per image) and the image bytes in a blob store — a
 * directory under the data dir (single node) or a JetStream object store (cluster mode).
 * Uploads are streamed and hashed (SHA-256); an optional Ed25519 signature over the digest is
 * verified against the configured public keys.
 * @module
 */

/** A stored firmware image as the API shows it. */
export interface FirmwareMeta {
  /** `{name}-{version}`: 1–128 of `A-Z a-z 0-9 _ - .`. */
  id: string;
  name: string;
  version: string;
  /** Bytes. */
  size: number;
  /** SHA-256 of the image, lower-case hex. */
  sha256: string;
  /** Ed25519 signature over the 32-byte SHA-256 digest, base64. */
  signature?: string;
  /** The name of the configured key that verified the signature (its file's base name). */
  signedBy?: string;
  /** ms since the epoch. */
  createdAt: number;
  contentType?: string;
}

/** Firmware images (FOTA campaigns read metadata through this). */
export interface FirmwareService {
  /** The image's metadata, or null when there is none with this id. */
  get(id: string): Promise<FirmwareMeta | null>;
}

/**
 * Firmware images as the API and the campaigns see them: metadata, the stored document, the
 * id pattern and the errors of the firmware store.
 * @module
 */
import { TwinmillError } from "../errors.ts";

/** A stored firmware image as the API shows it. */
export interface FirmwareMeta {
  /** `{name}-{version}`: 3–128 of `A-Z a-z 0-9 _ - .`. */
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

/** The document stored per image: the metadata and the key of its blob. */
export interface StoredFirmware extends FirmwareMeta {
  blob: string;
}

/** An image id. */
export const FIRMWARE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{2,127}$/;

/** No image has this id. */
export class FirmwareNotFoundError extends TwinmillError {
  override name = "FirmwareNotFoundError";
  constructor(id: string) {
    super("firmware_not_found", 404, `Firmware "${id}" not found`);
  }
}

/** An image with this id exists already. */
export class FirmwareExistsError extends TwinmillError {
  override name = "FirmwareExistsError";
  constructor(id: string, existing?: { name: string; version: string }) {
    super(
      "firmware_exists",
      409,
      existing
        ? `Firmware "${id}" exists (name "${existing.name}", version "${existing.version}"): ` +
          "upload a new version, or delete it first"
        : `Firmware "${id}" exists: upload a new version, or delete it first`,
    );
  }
}

/** The image is larger than `TWINMILL_FIRMWARE_MAX_BYTES`. */
export class FirmwareTooLargeError extends TwinmillError {
  override name = "FirmwareTooLargeError";
  constructor(max: number) {
    super(
      "firmware_too_large",
      413,
      `Firmware image is larger than ${max} bytes (TWINMILL_FIRMWARE_MAX_BYTES)`,
    );
  }
}

/** Storing the image would pass the image count or total size bound. */
export class FirmwareStoreFullError extends TwinmillError {
  override name = "FirmwareStoreFullError";
  constructor(why: string) {
    super("firmware_store_full", 507, `Firmware store is full: ${why}; delete old images`);
  }
}

/** A signature that does not verify (or is not a signature). */
export class FirmwareSignatureError extends TwinmillError {
  override name = "FirmwareSignatureError";
  constructor(message: string) {
    super("firmware_signature_invalid", 400, message);
  }
}

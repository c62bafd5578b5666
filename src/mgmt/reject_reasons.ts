/**
 * What each reject reason of a device message means, in words an engineer can act on
 * (diagnostics). The reasons themselves are the bounded set of `actors/validate.ts`.
 * @module
 */
import type { RejectReason } from "../../actors/validate.ts";

/** One sentence per reject reason: what the device did wrong. */
export const REJECT_EXPLANATIONS: Readonly<Record<RejectReason, string>> = {
  bad_topic: "the topic is not a device topic (twins/{id}/telemetry, reported, status, " +
    "commands/{cmdId}/result)",
  bad_id: "the twin id in the topic is not 1-128 of A-Z a-z 0-9 _ - . :",
  too_large: "the payload is over 64 KiB",
  not_json: "the payload is not UTF-8 JSON",
  not_object: "the payload is JSON but not an object",
  bad_field: "a telemetry field is not a number, boolean or string (nested objects, arrays, " +
    "null and non-finite numbers are refused), a field name is empty or over 128 characters, " +
    "ts is not a non-negative number, or the message has no field",
  bad_status: "the status is neither online nor offline",
  acl_denied: "the connection may not publish on this topic (another twin's topics)",
};

/** The explanation of a reject reason; a reason this version does not know is named as is. */
export function explainRejection(reason: string): string {
  return (REJECT_EXPLANATIONS as Record<string, string>)[reason] ?? reason;
}

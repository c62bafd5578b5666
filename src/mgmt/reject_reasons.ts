/**
 * What each reject reason of a device message means, in words an engineer can act on
 * (diagnostics). The reasons themselves are the bounded set of `actors/validate.ts`.
 * @module
 */
import type { RejectReason } from "../../actors/validate.ts";
import { explainSparkplugRejection } from "../connectors/sparkplug/reasons.ts";

/** One sentence per reject reason: what the device did wrong. */
const REJECT_EXPLANATIONS: Readonly<Record<RejectReason, string>> = {
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
  payload_too_deep: "the JSON nests objects/arrays deeper than TWINMILL_JSON_MAX_DEPTH " +
    "(default 32) levels",
  too_many_keys: "a JSON object has more keys than TWINMILL_JSON_MAX_KEYS (default 1,000)",
  string_too_long: "a JSON string or key is longer than TWINMILL_JSON_MAX_STRING (default " +
    "65,536) characters",
  array_too_long: "a JSON array has more elements than TWINMILL_JSON_MAX_ARRAY (default 10,000)",
  bad_number: "a number is not finite (e.g. 1e400, which JavaScript reads as Infinity)",
  bad_key: 'the JSON has a "__proto__" key',
  bad_property: "the MQTT 5 user properties pass a limit: more than 16 pairs, a name empty, " +
    'over 64 bytes or "__proto__", or a value over 256 bytes',
  twin_too_large: "applying it would make the twin larger than TWINMILL_TWIN_MAX_BYTES " +
    "(default 256 KiB of attributes, reported and desired state); remove fields first",
  twin_quarantined: "the twin is quarantined: its state could not be stored (see the " +
    "diagnostics' quarantine) and it takes no changes until the quarantine ends",
};

/** The explanation of a reject reason; a reason this version does not know is named as is. */
export function explainRejection(reason: string): string {
  return (REJECT_EXPLANATIONS as Record<string, string>)[reason] ??
    explainSparkplugRejection(reason) ?? reason;
}

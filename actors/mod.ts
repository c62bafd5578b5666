/**
 * The twin as pure functions: state, messages, effects, validation of device input.
 * @module
 */
export { applyTwin } from "./twin_apply.ts";
export {
  type AlarmChange,
  type Connectivity,
  emptyTwin,
  type FieldMeta,
  pointTags,
  telemetryPoint,
  type TwinEffect,
  type TwinEvent,
  type TwinMessage,
  type TwinRecord,
  type TwinResult,
  type TwinState,
} from "./twin.ts";
export { computeDelta, deepEqual, isObject, type JsonObject, mergePatch } from "./json.ts";
export {
  type DeviceBody,
  type DeviceKind,
  type DeviceTopic,
  isValidTwinId,
  MAX_PAYLOAD_BYTES,
  parseDeviceBody,
  parseDeviceTopic,
  type RejectReason,
} from "./validate.ts";

/**
 * The bridge from the plant's broker (`TWINMILL_MQTT_URL`): a device connector that is a
 * client of an existing MQTT broker. See `bridge.ts`.
 * @module
 */
export { type Bridge, type BridgeOptions, startBridge } from "./bridge.ts";
export { AckQueue, type AckSink, MAX_WAITING_ACKS } from "./acks.ts";
export { type BridgedPublish, intake, type IntakeParts, TWIN_FILTERS } from "./intake.ts";

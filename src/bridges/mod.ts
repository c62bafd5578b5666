/**
 * Bridges to the outside: durable ingest, InfluxDB writer (the embedded MQTT broker is a
 * connector: `src/connectors/mqtt/`).
 * @module
 */
export { type Accepted, Ingest, type IngestOptions, type IngestPort } from "./ingest.ts";
export { messageKey, type Origin, originKey } from "./message_key.ts";
export { InfluxWriter } from "./influx_writer.ts";
export type { InfluxWriterOptions } from "./influx_options.ts";
export { type Point, toLineProtocol } from "./line_protocol.ts";

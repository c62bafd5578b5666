/**
 * Bridges to the outside: embedded MQTT broker, durable ingest, InfluxDB writer.
 * @module
 */
export { type Broker, type BrokerOptions, matchesDropTopic, startBroker } from "./mqtt_broker.ts";
export {
  type Accepted,
  Ingest,
  type IngestOptions,
  type IngestPort,
  type Origin,
} from "./ingest.ts";
export { InfluxWriter } from "./influx_writer.ts";
export type { InfluxWriterOptions } from "./influx_options.ts";
export { type Point, toLineProtocol } from "./line_protocol.ts";

/**
 * The transport port, its subjects, and its adapters (in-process, NATS).
 * @module
 */
export { type Message, type Subscription, type Transport, TransportError } from "./port.ts";
export { type EventType, idToken, subjects } from "./subjects.ts";
export { memoryTransport } from "./memory.ts";
export { natsTransport, type NatsTransportOptions, redact } from "./nats.ts";

/**
 * The actor runtime and the twin host on top of it.
 * @module
 */
export {
  type ActorHooks,
  ActorSystem,
  type ActorSystemOptions,
  type Behavior,
} from "./actor_system.ts";
export { type Clock, ManualClock, settle, systemClock, type TimerId } from "./clock.ts";
export { hostDefaults, TwinHost, type TwinHostOptions } from "./twin_host.ts";
export { type HostDiagnostics, type TwinService } from "./twin_service.ts";
export { listTwins, MAX_SCAN } from "./list_twins.ts";

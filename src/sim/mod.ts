/**
 * The factory simulator behind `deno task simulate`: a plant of presses, conveyors, CNC machines
 * and environmental sensors sending telemetry over MQTT, with injected faults, progress and a
 * summary (see `scripts/simulate.ts` and the README's "Factory simulator").
 * @module
 */
export { type FaultConfig, type FaultEvent, FaultPlanner, parseFaults } from "./faults.ts";
export { buildPlant, DeviceSim, type DeviceSpec, KINDS, type MachineKind } from "./plant.ts";
export { parseOptions, type SimOptions, USAGE, UsageError } from "./options.ts";
export { formatSummary, type Summary } from "./report.ts";
export { type RunHooks, simulate } from "./runner.ts";

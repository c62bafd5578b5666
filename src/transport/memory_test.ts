import { transportConformance } from "../../tests/conformance/transport_conformance.ts";
import { memoryTransport } from "./memory.ts";

transportConformance("memory transport", () => Promise.resolve(memoryTransport()));

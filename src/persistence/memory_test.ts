import { persistenceConformance } from "../../tests/conformance/persistence_conformance.ts";
import { memoryPersistence } from "./memory.ts";

persistenceConformance("memory", {
  open() {
    const p = memoryPersistence();
    // in memory "reopen" is the same store: disposing it is a no-op
    return Promise.resolve({ p, reopen: () => Promise.resolve(p) });
  },
});

import {
  persistenceConformance,
  persistenceHandle,
} from "../../tests/conformance/persistence_conformance.ts";
import { memoryPersistence } from "./memory.ts";

persistenceConformance("memory", () => {
  // In memory, "reopen" is the same store: disposing it is a no-op.
  const p = memoryPersistence();
  return Promise.resolve({
    open: () => Promise.resolve(persistenceHandle(p)),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  });
});

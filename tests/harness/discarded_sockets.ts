/**
 * For tests that make nats.js connections a server refuses: the socket nats.js lets go of may
 * throw an uncaught `read ECONNRESET` under Deno (see src/transport/socket_errors.ts), which the
 * node's main.ts ignores and which would otherwise fail the test module as an uncaught error.
 * @module
 */
import { isDiscardedSocketError } from "../../src/transport/socket_errors.ts";

/** Ignores, for the rest of this test module, the errors main.ts ignores in the node. */
export function ignoreDiscardedSockets(): void {
  globalThis.addEventListener("error", (e) => {
    if (isDiscardedSocketError(e.error)) e.preventDefault();
  });
}

/**
 * Stand-ins for aedes clients in the connector's unit tests: only the fields the broker's
 * parts read (`id`, `clean`, `closed`, `conn`, the broker's client table, `close()`).
 * @module
 */
import type { Client } from "aedes";

/** A fake client and what happened to it. */
export interface FakeClient {
  client: Client;
  /** True once `close()` or `conn.end()` was called. */
  readonly closed: boolean;
}

/** A fake aedes client with client id `id`; `clients` is its broker's table of live clients. */
export function fakeClient(
  id: string,
  o: { clean?: boolean; clients?: Record<string, Client> } = {},
): FakeClient {
  let closed = false;
  const c = {
    id,
    clean: o.clean ?? true,
    broker: { clients: o.clients ?? {} },
    conn: { end: () => closed = true },
    close: () => closed = true,
  } as unknown as Client;
  return {
    client: c,
    get closed() {
      return closed;
    },
  };
}

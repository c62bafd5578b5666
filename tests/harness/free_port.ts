/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago: listens on port 0,
 * reads the port the kernel chose, and closes the listener.
 */
export function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return Promise.resolve(port);
}

/** Returns `n` distinct free ports (see {@linkcode freePort}). */
export function freePorts(n: number): Promise<number[]> {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return Promise.resolve(ports);
}

/** Resolves true when 127.0.0.1:`port` accepts a TCP connection, false otherwise. */
export async function canConnect(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

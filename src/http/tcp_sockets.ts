/**
 * The operating system's view of the gateway's TCP connections (Linux): which connections are
 * open on a local port, read from the kernel's socket tables (`/proc/net/tcp`, `tcp6`), and a
 * way to end one from outside the HTTP server that owns it — `shutdown(2)` through FFI on a
 * duplicate of its descriptor, checked to be the same socket first. The server then sees the
 * peer gone and closes the connection itself.
 *
 * `Deno.serve` (Deno 2.9) gives no hold on its connections and has no header or idle timeout;
 * {@linkcode ./conn_guard.ts} enforces them with these two functions.
 * @module
 */

/** An established TCP connection of a local port. */
export interface TcpConnection {
  /** The peer, as {@linkcode peerKey} spells it. */
  peer: string;
  /** The socket's inode: stable for the connection's life, unique while it is open. */
  inode: string;
}

/**
 * A canonical `host|port` for a peer address, the same for the kernel's table and for
 * `Deno.ServeHandlerInfo.remoteAddr`: IPv4 dotted, IPv4-mapped IPv6 as IPv4, other IPv6 as
 * eight lowercase groups without leading zeros.
 */
export function peerKey(host: string, port: number): string {
  return `${host.includes(":") ? canonicalHost(host) : host}|${port}`;
}

function canonicalHost(host: string): string {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (!h.includes(":")) return h;
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (dotted) return dotted[1]; // ::ffff:10.0.0.1
  const [head, tail] = h.includes("::") ? h.split("::") : [h, undefined];
  const a = head ? head.split(":") : [];
  const b = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array(8 - a.length - b.length).fill("0");
  const g = [...a, ...zeros, ...b].map((x) => (parseInt(x, 16) || 0).toString(16));
  if (g.length === 8 && g.slice(0, 5).every((x) => x === "0") && g[5] === "ffff") {
    const v = parseInt(g[6], 16) * 65536 + parseInt(g[7], 16);
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
  }
  return g.join(":");
}

/** `0100007F` (little-endian words, as /proc prints them) → `127.0.0.1` or an IPv6 text. */
function procHost(hex: string): string {
  const words: number[] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const w = hex.slice(i, i + 8);
    // each 32-bit word is printed in host (little-endian) byte order
    words.push(parseInt(w.slice(6, 8) + w.slice(4, 6) + w.slice(2, 4) + w.slice(0, 2), 16));
  }
  if (words.length === 1) {
    const v = words[0];
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
  }
  const groups: string[] = [];
  for (const w of words) groups.push((w >>> 16).toString(16), (w & 0xffff).toString(16));
  return groups.join(":");
}

/** TCP state `01` of the kernel's table. */
const ESTABLISHED = "01";

/**
 * Parses a kernel socket table (`/proc/net/tcp` or `tcp6` text) into the established
 * connections whose local port is `port`.
 */
export function parseTcpTable(text: string, port: number): TcpConnection[] {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  const out: TcpConnection[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes(suffix)) continue; // cheap filter before splitting
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    if (f.length < 10 || f[3] !== ESTABLISHED) continue;
    const [localHex, localPort] = f[1].split(":");
    if (localHex === undefined || parseInt(localPort, 16) !== port) continue;
    const [remHex, remPort] = f[2].split(":");
    out.push({ peer: peerKey(procHost(remHex), parseInt(remPort, 16)), inode: f[9] });
  }
  return out;
}

/** The established connections of local port `port` (Linux; IPv4 and IPv6). */
export async function tcpConnections(port: number): Promise<TcpConnection[]> {
  const out: TcpConnection[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(table);
    } catch {
      continue; // no IPv6 table on a kernel without IPv6
    }
    out.push(...parseTcpTable(text, port));
  }
  return out;
}

/** Ends connections of this process by socket inode. */
export interface SocketCloser {
  /** Shuts down (both directions) the sockets of this process with these inodes; how many. */
  shutdown(inodes: Iterable<string>): Promise<number>;
}

const SHUT_RDWR = 2;

/**
 * A {@linkcode SocketCloser} over libc's `dup`, `shutdown` and `close`, or `null` where that is
 * not available (not Linux, no `/proc`, no libc, or no FFI permission).
 */
export function openSocketCloser(): SocketCloser | null {
  if (Deno.build.os !== "linux") return null;
  let libc;
  try {
    libc = Deno.dlopen("libc.so.6", {
      dup: { parameters: ["i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      shutdown: { parameters: ["i32", "i32"], result: "i32" },
    });
  } catch {
    return null;
  }
  const { dup, close, shutdown } = libc.symbols;
  const link = (fd: number | string) => Deno.readLink(`/proc/self/fd/${fd}`).catch(() => "");
  return {
    async shutdown(inodes) {
      const want = new Set([...inodes].map((i) => `socket:[${i}]`));
      if (want.size === 0) return 0;
      let done = 0;
      for await (const e of Deno.readDir("/proc/self/fd")) {
        if (!want.has(await link(e.name))) continue;
        // The descriptor may be closed and reused by another socket at any moment: act on a
        // duplicate (it keeps the socket it names alive) after checking it is the one meant.
        const fd = dup(Number(e.name));
        if (fd < 0) continue;
        try {
          const target = await link(fd);
          if (want.has(target) && shutdown(fd, SHUT_RDWR) === 0) {
            want.delete(target);
            done++;
          }
        } finally {
          close(fd);
        }
        if (want.size === 0) break;
      }
      return done;
    },
  };
}

/**
 * Memory of a process as the kernel sees it, for tests that bound what an input may cost.
 * @module
 */

/**
 * Resident set size of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
 *
 * @example
 * ```ts
 * const idle = await rss(node.pid);
 * ```
 */
export async function rss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

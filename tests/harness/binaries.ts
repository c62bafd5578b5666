/** Directories searched after `$PATH` (sbin dirs are often missing from a non-root PATH). */
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

const cache = new Map<string, string>();

/**
 * Returns the absolute path of the first of `names` found on `$PATH` or in the usual
 * system bin directories. Throws `"<binary> not found: run tests/ensure_servers.sh
 * (apt-get install <pkg>)"` when none is found.
 *
 * @example
 * ```ts
 * const vm = findBinary(["victoria-metrics", "victoria-metrics-prod"], "victoria-metrics");
 * ```
 */
export function findBinary(names: string | string[], pkg: string): string {
  const list = typeof names === "string" ? [names] : names;
  const key = list.join("|");
  const hit = cache.get(key);
  if (hit) return hit;
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter(Boolean), ...EXTRA_DIRS];
  for (const name of list) {
    for (const dir of dirs) {
      const path = `${dir}/${name}`;
      try {
        const info = Deno.statSync(path);
        if (info.isFile && (info.mode ?? 0o111) & 0o111) {
          cache.set(key, path);
          return path;
        }
      } catch {
        // not here
      }
    }
  }
  throw new Error(`${list[0]} not found: run tests/ensure_servers.sh (apt-get install ${pkg})`);
}

/**
 * NATS users for tests of the start-up permission check: the node's permissions
 * (`src/cluster/permission_list.ts`) with `tm.>` spelled out family by family, less what a test
 * takes away.
 *
 * @example
 * ```ts
 * const user = nodeUserWithout("no-inbound", "pw", { publish: ["tm.in.>"] });
 * const conf = renderAuthConf({ nodePassword: "pw", toolsPassword: "pw", extraUsers: [user] });
 * ```
 * @module
 */
import { type AuthUser, nodePermissions, TM_FAMILIES } from "../../src/cluster/permission_list.ts";

/** What to take away: exact entries of the allow lists (`tm.>` is expanded first). */
export interface Drop {
  publish?: string[];
  subscribe?: string[];
}

/** A user `name` with the node's permissions less `drop`. */
export function nodeUserWithout(name: string, password: string, drop: Drop): AuthUser {
  const p = nodePermissions();
  const expand = (l: string[], out: string[] = []) =>
    l.flatMap((s) => s === "tm.>" ? [...TM_FAMILIES] : [s]).filter((s) => !out.includes(s));
  return {
    name,
    password: `"${password}"`,
    permissions: {
      publish: expand(p.publish, drop.publish),
      subscribe: expand(p.subscribe, drop.subscribe),
    },
  };
}

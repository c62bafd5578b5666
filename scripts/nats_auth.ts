/**
 * Writes `infra/nats-auth.conf`, the NATS account of a twinmill cluster (users `node` and
 * `tools`, their permissions), from `src/cluster/permission_list.ts`. Run it after changing
 * what a node uses on NATS (a new bucket, a new subject):
 *
 *     deno run -A scripts/nats_auth.ts           # writes infra/nats-auth.conf
 *     deno run -A scripts/nats_auth.ts --stdout  # prints it
 *
 * `tests/infra/nats_auth_test.ts` fails while the file is not what this writes.
 * @module
 */
import { renderAuthConf } from "../src/cluster/permission_list.ts";

/** Where the account file lives. */
export const AUTH_CONF = new URL("../infra/nats-auth.conf", import.meta.url);

if (import.meta.main) {
  const text = renderAuthConf();
  if (Deno.args.includes("--stdout")) console.log(text.trimEnd());
  else {
    await Deno.writeTextFile(AUTH_CONF, text);
    console.error(`wrote ${AUTH_CONF.pathname}`);
  }
}

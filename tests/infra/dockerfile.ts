/**
 * Reads `infra/Dockerfile` the way the tests of `infra/` need it: instructions with line
 * continuations joined and comments dropped, exec-form arguments parsed, `ENV` as a map.
 * There is no container engine here, so the tests check the file itself.
 * @module
 */
import { REPO_ROOT } from "../harness/mod.ts";
import { envSchema } from "../../src/config/env_schema.ts";

/** One Dockerfile instruction: `HEALTHCHECK --interval=10s CMD [...]` → keyword and rest. */
export interface Instruction {
  keyword: string;
  args: string;
}

/** The instructions of a Dockerfile, in order. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) continue;
    if (line.startsWith("#")) continue; // a comment between continuation lines
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    out.push({ keyword: m[1].toUpperCase(), args: m[2].trim() });
  }
  return out;
}

/** The exec form `["a", "b"]` as an array; throws on the shell form (signals need exec form). */
export function execForm(args: string, what: string): string[] {
  if (!args.startsWith("[")) throw new Error(`${what} must use the exec form ["...", ...]`);
  const v = JSON.parse(args);
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    throw new Error(`${what} must be a JSON array of strings`);
  }
  return v;
}

/** Every `ENV K=V ...` of the file, later ones winning. */
export function envOf(ins: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of ins.filter((x) => x.keyword === "ENV")) {
    for (const pair of i.args.split(/\s+/)) {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new Error(`ENV "${i.args}": use the KEY=value form`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"(.*)"$/, "$1");
    }
  }
  return env;
}

/** `infra/Dockerfile`, parsed. */
export async function readDockerfile(): Promise<Instruction[]> {
  return parseDockerfile(await Deno.readTextFile(`${REPO_ROOT}/infra/Dockerfile`));
}

/** The names the node reads from the environment: the keys of its zod schema (`envSchema`). */
export function configVariables(): Promise<Set<string>> {
  return Promise.resolve(new Set(Object.keys(envSchema.shape)));
}

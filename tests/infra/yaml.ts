/**
 * A small YAML reader for the tests of `infra/`: block mappings and sequences, flow sequences
 * of scalars (`[a, b]`), `{}`, quoted and plain scalars (all scalars stay strings), comments.
 * Enough for `docker-compose config`'s normalized output, prometheus.yml and Grafana's
 * provisioning files; anything else (anchors, block scalars, flow mappings) throws rather
 * than being misread. The project has no YAML dependency and needs none for this.
 *
 * @example
 * ```ts
 * const doc = parseYaml("a:\n  - b: c\n") as Record<string, unknown>;
 * ```
 * @module
 */

/** A parsed YAML value: scalars are strings. */
export type Yaml = string | null | Yaml[] | { [key: string]: Yaml };

function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i).trimEnd();
    }
  }
  return line.trimEnd();
}

function unquote(s: string): string {
  const t = s.trim();
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'") && t.at(-1) === t[0]) return t.slice(1, -1);
  return t;
}

function scalar(raw: string, where: string): Yaml {
  const s = raw.trim();
  if (s === "{}") return {};
  if (s === "[]") return [];
  if (s.startsWith("[") && s.endsWith("]")) {
    return s.slice(1, -1).split(",").map((x) => unquote(x)).filter((x) => x !== "");
  }
  if (/^[&*|>{[]/.test(s) || /^!/.test(s)) {
    throw new Error(`yaml: ${where}: "${s}" is not supported by this reader`);
  }
  return unquote(s);
}

const indentOf = (l: string) => l.length - l.trimStart().length;
const isItem = (l: string) => /^-(\s|$)/.test(l.trimStart());
const KEY = /^("[^"]*"|'[^']*'|[^\s"'#][^:]*?):(?:\s+(.*))?$/;

/** Parses `text`; throws naming the line it cannot read. */
export function parseYaml(text: string): Yaml {
  const lines: { text: string; no: number }[] = [];
  text.split("\n").forEach((l, i) => {
    const t = stripComment(l);
    if (t.trim() !== "" && t.trim() !== "---") lines.push({ text: t, no: i + 1 });
  });
  let i = 0;

  function block(): Yaml {
    return isItem(lines[i].text) ? seq(indentOf(lines[i].text)) : map(indentOf(lines[i].text));
  }

  function child(ind: number): Yaml {
    if (i >= lines.length) return null;
    const next = lines[i].text;
    if (indentOf(next) > ind || (indentOf(next) === ind && isItem(next))) return block();
    return null;
  }

  function map(ind: number): Yaml {
    const out: Record<string, Yaml> = {};
    while (i < lines.length && indentOf(lines[i].text) === ind && !isItem(lines[i].text)) {
      const { text: t, no } = lines[i];
      const m = KEY.exec(t.trim());
      if (!m) throw new Error(`yaml: line ${no}: cannot read "${t.trim()}"`);
      i++;
      const key = unquote(m[1]);
      if (key === "<<") throw new Error(`yaml: line ${no}: merge keys are not supported`);
      out[key] = m[2] !== undefined && m[2] !== "" ? scalar(m[2], `line ${no}`) : child(ind);
    }
    if (i < lines.length && indentOf(lines[i].text) > ind) {
      throw new Error(`yaml: line ${lines[i].no}: unexpected indentation`);
    }
    return out;
  }

  function seq(ind: number): Yaml {
    const out: Yaml[] = [];
    while (i < lines.length && indentOf(lines[i].text) === ind && isItem(lines[i].text)) {
      const { text: t, no } = lines[i];
      const rest = t.trimStart().slice(1).trimStart();
      if (rest === "") {
        i++;
        out.push(child(ind));
      } else if (KEY.test(rest) && !/^["'[{]/.test(rest)) {
        // "- key: value": a mapping whose keys sit two columns further in
        lines[i] = { text: " ".repeat(ind + 2) + rest, no };
        out.push(map(ind + 2));
      } else {
        i++;
        out.push(scalar(rest, `line ${no}`));
      }
    }
    return out;
  }

  if (lines.length === 0) return null;
  const doc = block();
  if (i < lines.length) throw new Error(`yaml: line ${lines[i].no}: unexpected content`);
  return doc;
}

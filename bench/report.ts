/**
 * Benchmark results: one row per bench, rendered as a Markdown table and written to
 * `bench/RESULTS.md` with the machine (CPU model, cores, memory, load), the date and the
 * versions of Deno and of the servers the baselines use.
 * @module
 */

/** One row of the results table. */
export interface BenchRow {
  bench: string;
  result: string;
  baseline: string;
  ratio: string;
  target: string;
  /** Extra lines shown under the table (CPU use, settings, caveats). */
  notes: string[];
}

/** `target` with a verdict, e.g. `≥ 0.6× (met)`. */
export function verdict(target: string, met: boolean): string {
  return `${target} (${met ? "met" : "NOT met"})`;
}

/** Formats `n` with thousands separators and `digits` decimals. */
export function num(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The Markdown table of `rows`. */
export function table(rows: BenchRow[]): string {
  const head = ["bench", "result", "baseline", "ratio", "target"];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${[r.bench, r.result, r.baseline, r.ratio, r.target].join(" | ")} |`),
  ];
  return lines.join("\n");
}

/** The notes of `rows` as a Markdown list. */
export function notes(rows: BenchRow[]): string {
  return rows.flatMap((r) => r.notes.map((n) => `- **${r.bench}**: ${n}`)).join("\n");
}

/** Where and with what a run was made. */
export interface Environment {
  date: string;
  /** `deno --version`, first line. */
  deno: string;
  /** CPU model and core count. */
  cpu: string;
  /** Total memory. */
  memory: string;
  /** `nats-server`, `mosquitto`, `influxd` and `wrk` versions. */
  servers: string;
  /** Load average (1, 5, 15 min) when the run started and when it ended. */
  loadBefore: string;
  loadAfter: string;
  /** The run's `--quick` flag. */
  quick: boolean;
  /** Benches run and wall time. */
  duration: string;
}

/** Load average (1, 5, 15 min) from `/proc/loadavg`. */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(", ");
  } catch {
    return "unknown";
  }
}

/** First line of `cmd args` (stdout or stderr) matching `re`, or `"not found"`. */
function version(cmd: string, args: string[], re: RegExp): string {
  try {
    const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return text.match(re)?.[1] ?? text.split("\n")[0].trim();
  } catch {
    return "not found";
  }
}

/** Versions of the servers and tools the baselines use. */
function serverVersions(): string {
  const find = (name: string) => {
    for (const dir of ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"]) {
      try {
        Deno.statSync(`${dir}/${name}`);
        return `${dir}/${name}`;
      } catch {
        // next
      }
    }
    return name;
  };
  return [
    `nats-server ${version(find("nats-server"), ["--version"], /v?(\d+\.\d+\.\d+\S*)/)}`,
    `mosquitto ${version(find("mosquitto"), ["-h"], /version (\S+)/)}`,
    `influxd ${version(find("influxd"), ["version"], /InfluxDB v?(\S+)/)}`,
    `wrk ${version(find("wrk"), ["-v"], /wrk (\S+)/)}`,
  ].join(", ");
}

/**
 * Machine description: date, `deno --version` first line, CPU model, cores, memory, server
 * versions; `loadBefore` as read when the run started.
 */
export function environment(
  o: { loadBefore: string; quick: boolean; duration: string },
): Environment {
  const v = new Deno.Command(Deno.execPath(), { args: ["--version"], stdout: "piped" })
    .outputSync();
  const deno = new TextDecoder().decode(v.stdout).split("\n")[0].trim();
  let cpu = "unknown CPU";
  let memory = "unknown";
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    cpu = info.match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? cpu;
    const kb = Deno.readTextFileSync("/proc/meminfo").match(/^MemTotal:\s+(\d+) kB/m)?.[1];
    if (kb) memory = `${(Number(kb) / 1024 / 1024).toFixed(1)} GiB`;
  } catch {
    // not Linux
  }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    deno,
    cpu: `${cpu}, ${navigator.hardwareConcurrency} cores`,
    memory,
    servers: serverVersions(),
    loadBefore: o.loadBefore,
    loadAfter: loadAverage(),
    quick: o.quick,
    duration: o.duration,
  };
}

/** The whole `RESULTS.md` document. */
export function document(rows: BenchRow[], env: Environment): string {
  return [
    `# twinmill benchmark results${env.quick ? " (quick run)" : ""}`,
    "",
    ...(env.quick
      ? [
        "**Quick run** (`deno task bench --quick`): small counts, one round each — it proves " +
        "the benches work; its figures are not comparable with a full run.",
        "",
      ]
      : []),
    `- date: ${env.date}`,
    `- machine: ${env.cpu}, ${env.memory} memory`,
    `- deno: ${env.deno}`,
    `- servers: ${env.servers}`,
    `- load average (1, 5, 15 min): ${env.loadBefore} before, ${env.loadAfter} after`,
    `- run: ${env.duration}`,
    "",
    "Generated by `deno task bench`; every ratio is against a baseline measured in the same run " +
    "on the same machine. How each bench measures: [README.md](README.md).",
    "",
    table(rows),
    "",
    "## Notes",
    "",
    notes(rows),
    "",
  ].join("\n");
}

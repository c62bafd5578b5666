/**
 * Certificates for TLS tests, issued with the real `openssl` as the README does (X.509 v3,
 * P-256): a CA, a server certificate for `localhost`/`127.0.0.1`, client certificates whose CN
 * is a twin id.
 *
 * @example
 * ```ts
 * const dir = await Deno.makeTempDir();
 * await issueCertificates(dir, ["press-9"]); // ca.pem, server.pem/.key, press-9.pem/.key
 * const s = await certificateSerial(dir, "press-9"); // e.g. "3A9F…"
 * ```
 * @module
 */
import { findBinary } from "./binaries.ts";

/** Run `openssl` in `dir`; throws with its stderr when it fails. */
export async function openssl(dir: string, ...args: string[]): Promise<void> {
  const bin = findBinary("openssl", "openssl");
  const out = await new Deno.Command(bin, { args, cwd: dir, stderr: "piped" }).output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
}

/**
 * In `dir`: a CA (`ca.pem`, `ca.key`; kept when it exists), a server certificate `{server}.pem`
 * and `.key` for `localhost` and `127.0.0.1`, and a client certificate `{twin}.pem` and `.key`
 * (CN = the twin id) for each of `twins`.
 */
export async function issueCertificates(
  dir: string,
  twins: string[],
  server = "server",
): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  try {
    await Deno.stat(`${dir}/ca.pem`);
  } catch {
    await openssl(
      dir,
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=twinmill test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    );
  }
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  await Deno.writeTextFile(
    `${dir}/client.ext`,
    "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
  );
  const sign = async (name: string, cn: string, ext: string) => {
    await openssl(
      dir,
      "req",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    );
    await openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-extfile",
      ext,
    );
  };
  await sign(server, "localhost", "server.ext");
  for (const t of twins) await sign(t, t, "client.ext");
}

/** The serial of `{dir}/{name}.pem` as `openssl x509 -serial` prints it (hex). */
export async function certificateSerial(dir: string, name: string): Promise<string> {
  const out = await new Deno.Command(findBinary("openssl", "openssl"), {
    args: ["x509", "-in", `${name}.pem`, "-noout", "-serial"],
    cwd: dir,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim().replace("serial=", "");
}

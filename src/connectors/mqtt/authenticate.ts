/**
 * CONNECT: who a client is, and whether it may connect. In order: authentication failure
 * throttling (CONNACK 3, unchecked), the connection limit (CONNACK 3), a provisioning login
 * (`$provision` + key), a client certificate on the mTLS listener (it names the twin; no token
 * needed), else a device token when device authentication is on. A refused credential is
 * CONNACK 4, a client id held by another identity CONNACK 5, a store that cannot answer
 * CONNACK 3.
 * @module
 */
import type { Client } from "aedes";
import type { Buffer } from "node:buffer";
import { isValidTwinId } from "../../../actors/validate.ts";
import { normSerial } from "../../security/device_auth.ts";
import { type AuthThrottle, connectionsFull } from "./limits.ts";
import type { Notices } from "./notices.ts";
import { PROVISION_USERNAME, type ProvisioningPort } from "./provisioning.ts";
import type { Identity, Sessions } from "./sessions.ts";
import {
  certificateTwin,
  isTlsConnection,
  peerAddress,
  type TlsListener,
  verifiedPeerCertificate,
} from "./tls.ts";

/** Device authentication: the credential id a token belongs to for a twin, or null. */
export interface DeviceVerifier {
  verify(twin: string, token: string): Promise<string | null>;
}

/** What CONNECT checks against. */
export interface AuthenticateOptions {
  auth?: DeviceVerifier;
  maxConnections?: number;
  tls?: TlsListener;
  provisioning?: ProvisioningPort;
}

type ConnectError = Error & { returnCode: 4 | 5 };
/** aedes's `authenticate` hook (its types' return-code enum is `const`, hence the narrow one). */
export type Authenticate = (
  client: { id: string },
  username: string | undefined,
  password: Buffer | undefined,
  reply: (error: ConnectError | null, success: boolean | null) => void,
) => void;

/** A refusal with its CONNACK return code. */
function connackError(message: string, returnCode: 3 | 4 | 5): ConnectError {
  return Object.assign(new Error(message), { returnCode }) as unknown as ConnectError;
}

/** The `authenticate` hook of one broker. */
export function authenticator(
  o: AuthenticateOptions,
  sessions: Sessions,
  throttle: AuthThrottle,
  notices: Notices,
): Authenticate {
  const { log, metrics: m } = notices;
  return (client, username, password, reply) => {
    // deno-lint-ignore no-explicit-any
    const source = `${peerAddress((client as any).conn)}`;
    const who = username === undefined ? undefined : `u:${username.slice(0, 256)}`;
    const throttledBy = throttle.take(source, who);
    let settled = false;
    const refund = () => {
      if (settled) return;
      settled = true;
      throttle.refund(source, who);
    };
    const done = (error: ConnectError | null, success: boolean | null) => {
      // only a refused credential counts as a failure (not a full node or a store outage)
      if (!(error && error.returnCode === 4)) refund();
      settled = true;
      reply(error, success);
    };
    if (throttledBy) {
      settled = true; // nothing taken
      // too many failures: refused without checking anything (CONNACK 3: back off, retry)
      m.authThrottled.inc({ by: throttledBy });
      if (notices.oncePerMinute(`throttled\u0000${throttledBy === "source" ? source : who}`)) {
        log.warn("MQTT authentication throttled after repeated failures", {
          by: throttledBy,
          from: source,
          device: username?.slice(0, 128),
        });
      }
      return reply(connackError("Server unavailable", 3), false);
    }
    const refuse = (reason: string) => {
      notices.authFailed(client, username, reason);
      done(connackError("Bad username or password", 4), false);
    };
    const unavailable = () => done(connackError("Server unavailable", 3), false);
    /**
     * A restricted client is who it says: its session (client id) must not be another
     * identity's. A client id held by a live connection of another twin is refused (CONNACK
     * 5) — no takeover across identities — except the twin's own id, which it always gets.
     */
    const admit = (me: Identity) => {
      if (sessions.admit(client as Client, me)) return done(null, true);
      notices.authFailed(client, username, "client_id_held_by_another_device");
      done(connackError("Not authorized", 5), false);
    };
    if (connectionsFull(sessions.live.size, o.maxConnections)) {
      // CONNACK 3: the device backs off and tries again (another node, later)
      m.rateLimited.inc({ what: "mqtt_connection" });
      return unavailable();
    }
    if (username === PROVISION_USERNAME) {
      if (!o.provisioning) return refuse("provisioning_disabled");
      if (!password || password.length === 0) return refuse("missing_provisioning_key");
      // the client id is a level of its topics
      if (!/^[\w.:-]{1,128}$/.test(client.id)) return refuse("bad_client_id");
      const key = password.toString();
      o.provisioning.check(key).then((why) => {
        if (why) return refuse(why);
        sessions.admitProvisioner(client as Client, key);
        done(null, true);
      }, (err) => {
        log.error("cannot check a provisioning key", { err });
        unavailable();
      });
      return;
    }
    // deno-lint-ignore no-explicit-any
    const conn = (client as any).conn;
    const mtls = o.tls?.clientCa;
    if (mtls && isTlsConnection(conn)) {
      // mTLS, whatever device authentication says: the certificate names the twin, no token
      // needed. The handshake already required one that the CA issued.
      const cert = verifiedPeerCertificate(conn);
      if (!cert?.serialNumber) return refuse("missing_client_certificate");
      const twin = certificateTwin(cert);
      if (!twin) return refuse("certificate_without_twin_id");
      if (username && username !== twin) return refuse("username_is_not_the_certificate_twin");
      const serial = normSerial(cert.serialNumber);
      mtls.isRevoked(serial).then((revoked) => {
        if (revoked) return refuse("certificate_revoked");
        admit({ twin, credential: `cert:${serial}` });
      }, (err) => {
        log.error("cannot check certificate revocation", { device: twin, err });
        unavailable();
      });
      return;
    }
    if (!o.auth) return done(null, true);
    if (!username || !password || password.length === 0) return refuse("missing_credentials");
    if (!isValidTwinId(username)) return refuse("bad_username");
    o.auth.verify(username, password.toString()).then(
      (credential) => {
        if (!credential) return refuse("bad_credentials");
        admit({ twin: username, credential });
      },
      (err) => {
        log.error("cannot check device credentials", { device: username, err });
        unavailable();
      },
    );
  };
}

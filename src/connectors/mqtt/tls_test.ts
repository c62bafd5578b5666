import assert from "node:assert/strict";
import {
  certificateTwin,
  handshakeRefusal,
  isTlsConnection,
  peerAddress,
  verifiedPeerCertificate,
} from "./tls.ts";

Deno.test("certificateTwin: the SAN URI first, else the CN, only valid twin ids", () => {
  assert.equal(
    certificateTwin({
      subject: { CN: "press-1" },
      subjectaltname: "DNS:x.plant, URI:urn:twinmill:twin:press-2",
    }),
    "press-2",
  );
  assert.equal(certificateTwin({ subject: { CN: "press-1" } }), "press-1");
  assert.equal(certificateTwin({ subject: { CN: ["press-3", "other"] } }), "press-3");
  assert.equal(certificateTwin({ subject: { CN: "plant CA/with slash" } }), undefined);
  assert.equal(certificateTwin({}), undefined);
});

Deno.test("verifiedPeerCertificate: only a TLS socket whose certificate was verified", () => {
  const cert = { subject: { CN: "press-1" }, serialNumber: "0A" };
  const tls = (authorized: boolean) => ({
    encrypted: true,
    authorized,
    getPeerCertificate: () => cert,
  });
  assert.equal(verifiedPeerCertificate(tls(true)), cert);
  assert.equal(verifiedPeerCertificate(tls(false)), undefined);
  assert.equal(
    verifiedPeerCertificate({ authorized: true, getPeerCertificate: () => cert }),
    undefined,
  );
  assert.equal(verifiedPeerCertificate(undefined), undefined);
  assert.equal(isTlsConnection(tls(false)), true);
  assert.equal(isTlsConnection({}), false);
});

Deno.test("handshakeRefusal: a missing client certificate is named, the rest is one reason", () => {
  assert.equal(
    handshakeRefusal({ code: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" }),
    "missing_client_certificate",
  );
  assert.equal(handshakeRefusal({ code: "ECONNRESET" }), "tls_handshake_failed");
  assert.equal(handshakeRefusal({}), "tls_handshake_failed");
});

Deno.test("peerAddress: the socket's, else its parent's (a failed handshake in Deno)", () => {
  assert.equal(peerAddress({ remoteAddress: "10.0.0.9" }), "10.0.0.9");
  assert.equal(peerAddress({ _parent: { remoteAddress: "127.0.0.1" } }), "127.0.0.1");
  assert.equal(peerAddress(undefined), "unknown");
});

/**
 * Socket errors nobody can catch: nats.js's node transport removes a socket's listeners before it
 * destroys it (on close, and when a server refuses the client), and under Deno a read that fails
 * in between — the server resetting the connection it just refused — is thrown from the socket
 * as an uncaught exception (`read ECONNRESET`), which would stop the node. Such a socket is being
 * thrown away: the client has already handled what its error would say.
 * @module
 */

/** Codes of a connection the peer or the network ended. */
const ENDED = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

/**
 * True for an uncaught error of a socket read or write on a connection the peer ended
 * (`ECONNRESET`, `EPIPE`, `ECONNABORTED`): one of a socket some library already let go of (its
 * error listeners removed), never an error of our code.
 */
export function isDiscardedSocketError(err: unknown): boolean {
  if (err === null || typeof err !== "object") return false;
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  return typeof code === "string" && ENDED.has(code) && (syscall === "read" || syscall === "write");
}

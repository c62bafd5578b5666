import assert from "node:assert/strict";
import { parseTcpTable, peerKey, tcpConnections } from "./tcp_sockets.ts";

const TABLE =
  `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C464 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:C465 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0 20 4 30 10 -1
   3: 0100007F:C466 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0 20 4 30 10 -1
   4: 0A00A8C0:1F90 0500A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 1005 1 0 20 4 30 10 -1
`;

const TABLE6 = `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:A000 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:A001 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0
`;

Deno.test("tcp table: established connections of the local port, peers as handlers see them", () => {
  assert.deepEqual(parseTcpTable(TABLE, 8080), [
    { peer: "127.0.0.1|50276", inode: "1002" },
    { peer: "192.168.0.5|54321", inode: "1005" },
  ]);
  assert.deepEqual(parseTcpTable(TABLE6, 8080), [
    { peer: "0:0:0:0:0:0:0:1|40960", inode: "2001" },
    { peer: "127.0.0.1|40961", inode: "2002" },
  ]);
  assert.deepEqual(parseTcpTable(TABLE, 9090), []);
});

Deno.test("peerKey: one spelling per address", () => {
  assert.equal(peerKey("127.0.0.1", 1), "127.0.0.1|1");
  assert.equal(peerKey("::1", 2), "0:0:0:0:0:0:0:1|2");
  assert.equal(peerKey("[::1]", 2), "0:0:0:0:0:0:0:1|2");
  assert.equal(peerKey("::ffff:10.0.0.7", 3), "10.0.0.7|3");
  assert.equal(peerKey("2001:DB8::0:1", 4), "2001:db8:0:0:0:0:0:1|4");
});

Deno.test("tcp table: a real connection to a local listener is listed with its peer", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  using client = await Deno.connect({ hostname: "127.0.0.1", port });
  using _server = await listener.accept();
  const found = await tcpConnections(port);
  assert.deepEqual(found.map((c) => c.peer), [peerKey("127.0.0.1", client.localAddr.port)]);
});

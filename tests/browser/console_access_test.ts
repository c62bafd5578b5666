/**
 * The console's sign-in and keyboard use in a real browser: a wrong key is refused in the
 * dialog, a JWT signs in (its role shown), the token lives in the tab's sessionStorage only
 * and signing out forgets it; the twins table pages through more twins than a page with the
 * API's cursor; an alarm is acknowledged with the keyboard alone.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { mosquittoPub, type NodeProcess, startNode } from "../harness/mod.ts";
import { launchBrowser } from "../harness/browser.ts";

const SECRET = "a-jwt-secret-of-at-least-32-characters!";

const publish = async (node: NodeProcess, id: string, payload: unknown) => {
  const r = await mosquittoPub([
    ...["-h", "127.0.0.1", "-p", String(node.mqttPort), "-q", "1"],
    ...["-t", `twins/${id}/telemetry`, "-m", JSON.stringify(payload)],
  ]);
  assert.equal(r.code, 0, r.stderr);
};

const jwt = (role: string, expires: string | number = "10m") =>
  new SignJWT({ role })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("shift-lead")
    .setExpirationTime(expires)
    .sign(new TextEncoder().encode(SECRET));

Deno.test("console: sign-in with a JWT, paging with the cursor, acknowledging by keyboard", async () => {
  await using node = await startNode({ TWINMILL_JWT_SECRET: SECRET });
  const admin = { authorization: `Bearer ${await jwt("admin")}` };
  // 120 twins: three pages of 50
  const rows = Array.from(
    { length: 120 },
    (_, i) =>
      JSON.stringify({ id: `valve-${String(i).padStart(3, "0")}`, attributes: { type: "valve" } }),
  );
  const bulk = await fetch(`${node.httpUrl}/v1/twins:bulk`, {
    method: "POST",
    headers: { ...admin, "content-type": "application/x-ndjson" },
    body: rows.join("\n") + "\n",
  });
  assert.equal(bulk.status, 200, await bulk.text());
  const put = await fetch(`${node.httpUrl}/v1/profiles/valve`, {
    method: "PUT",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify({
      rules: [{ id: "leak", kind: "threshold", field: "flow", op: ">", value: 5 }],
    }),
  });
  assert.equal(put.status, 201);
  await publish(node, "valve-007", { flow: 9 });

  await using browser = await launchBrowser();
  const c = await browser.page();
  const page = c.page;
  await page.goto(`${node.httpUrl}/#/twins`);
  const dialog = page.getByRole("dialog", { name: "Sign in" });
  await dialog.getByLabel("API key or JWT").fill("not-a-key-0123456789");
  await dialog.getByRole("button", { name: "Sign in" }).click();
  await dialog.getByRole("alert").getByText("Invalid API key or token").waitFor();
  await dialog.getByLabel("API key or JWT").fill(await jwt("operator"));
  await dialog.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("jwt:shift-lead · operator").waitFor();
  assert.equal(await page.evaluate(() => localStorage.length), 0, "nothing kept beyond the tab");
  assert.ok(await page.evaluate(() => sessionStorage.getItem("twinmill.token")));

  // paging: 50, 50, 20, and back
  await page.getByText("Page 1: 50 twins").waitFor();
  await page.getByRole("link", { name: "valve-049" }).waitFor();
  await page.getByRole("button", { name: "Next page" }).click();
  await page.getByText("Page 2: 50 twins").waitFor();
  await page.getByRole("link", { name: "valve-050" }).waitFor();
  await page.getByRole("button", { name: "Next page" }).click();
  await page.getByText("Page 3: 20 twins").waitFor();
  assert.equal(await page.getByRole("button", { name: "Next page" }).isDisabled(), true);
  await page.getByRole("button", { name: "Previous page" }).click();
  await page.getByText("Page 2: 50 twins").waitFor();
  await c.screenshot("console-twins-page-2");
  // search by id prefix: the list starts at the prefix (a cursor just below it) and stops past it
  await page.getByLabel("Twin id starts with").fill("valve-04");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByText("Page 1: 10 twins").waitFor();
  await page.getByRole("link", { name: "valve-040" }).waitFor();
  await page.getByRole("link", { name: "valve-049" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Next page" }).isDisabled(), true);

  // the keyboard alone: skip link, then the alarm's comment field, Enter acknowledges
  await page.goto(`${node.httpUrl}/#/alarms`);
  await page.reload(); // the focus starts at the top of the document
  const row = page.getByRole("row", { name: /^leak valve-007:leak:1/ });
  await row.waitFor();
  await page.keyboard.press("Tab");
  const focused = (l: typeof row) => l.evaluate((e) => e.matches(":focus"));
  assert.ok(await focused(page.getByRole("link", { name: "Skip to content" })));
  await page.keyboard.press("Enter");
  assert.ok(await focused(page.getByRole("main")));
  assert.match(page.url(), /#\/alarms$/, "the skip link leaves the route as it is");
  const comment = row.getByLabel("Comment for valve-007:leak:1");
  for (let i = 0; i < 40 && !await focused(comment); i++) {
    await page.keyboard.press("Tab");
  }
  await page.keyboard.type("closed the valve");
  await page.keyboard.press("Enter");
  await page.getByText("0 alarms (active), page 1").waitFor();
  const acked = await (await fetch(`${node.httpUrl}/v1/alarms?twin=valve-007`, { headers: admin }))
    .json();
  assert.equal(acked.items[0].ackComment, "closed the valve");

  // a token that expires: the next call asks for a sign-in, then goes on
  const expiresAt = Math.floor(Date.now() / 1000) + 2;
  await page.evaluate(
    (t) => sessionStorage.setItem("twinmill.token", t),
    await jwt("operator", expiresAt),
  );
  while (Date.now() / 1000 < expiresAt + 0.5) await new Promise((r) => setTimeout(r, 100));
  await page.goto(`${node.httpUrl}/#/twins?type=valve`);
  await dialog.getByRole("alert").getByText(/expired|Invalid/).waitFor();
  await dialog.getByLabel("API key or JWT").fill(await jwt("operator"));
  await dialog.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Page 1: 50 twins").waitFor();

  // signing out forgets the token: the next load asks again
  await page.getByRole("button", { name: "Sign out" }).click();
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("twinmill.token")), null);
  c.assertNoPageErrors();
});

import assert from "node:assert/strict";
import { ruleStatus } from "./state.ts";

Deno.test("ruleStatus lists rules with state in id order", () => {
  assert.deepEqual(ruleStatus(undefined), []);
  assert.deepEqual(
    ruleStatus({
      profile: "p",
      rules: {
        z: { def: "1", pendingSince: 5 },
        a: { def: "2", active: true, severity: "minor", fault: { message: "m", count: 2, at: 9 } },
      },
    }),
    [
      {
        rule: "a",
        active: true,
        severity: "minor",
        pendingSince: null,
        fault: { message: "m", count: 2, at: 9 },
      },
      { rule: "z", active: false, severity: null, pendingSince: 5, fault: null },
    ],
  );
});

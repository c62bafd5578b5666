import assert from "node:assert/strict";
import {
  describeWindow,
  isOpen,
  type MaintenanceWindow,
  nextOpening,
  windowProblem,
} from "./maintenance_window.ts";

const at = (iso: string) => Date.parse(iso);
// 2024-05-03 is a Friday
const NIGHT: MaintenanceWindow = { start: "22:00", end: "04:00", tz: "UTC" };

Deno.test("window: a window across midnight is open late evening and early morning", () => {
  assert.equal(isOpen(NIGHT, at("2024-05-03T21:59:00Z")), false);
  assert.equal(isOpen(NIGHT, at("2024-05-03T22:00:00Z")), true);
  assert.equal(isOpen(NIGHT, at("2024-05-03T23:59:59Z")), true);
  assert.equal(isOpen(NIGHT, at("2024-05-04T00:00:00Z")), true);
  assert.equal(isOpen(NIGHT, at("2024-05-04T03:59:59Z")), true);
  assert.equal(isOpen(NIGHT, at("2024-05-04T04:00:00Z")), false);
  assert.equal(isOpen(NIGHT, at("2024-05-04T12:00:00Z")), false);
});

Deno.test("window: days name the day the window starts on", () => {
  const fri: MaintenanceWindow = { ...NIGHT, days: ["fri"] };
  assert.equal(isOpen(fri, at("2024-05-03T23:00:00Z")), true, "Friday night");
  assert.equal(isOpen(fri, at("2024-05-04T02:00:00Z")), true, "Saturday morning, Friday's window");
  assert.equal(isOpen(fri, at("2024-05-04T23:00:00Z")), false, "Saturday night");
  assert.equal(isOpen(fri, at("2024-05-03T02:00:00Z")), false, "Friday morning: Thursday's window");
});

Deno.test("window: a same-day window", () => {
  const lunch: MaintenanceWindow = { start: "12:00", end: "13:30", tz: "UTC", days: ["mon"] };
  assert.equal(isOpen(lunch, at("2024-05-06T12:30:00Z")), true);
  assert.equal(isOpen(lunch, at("2024-05-06T13:30:00Z")), false);
  assert.equal(isOpen(lunch, at("2024-05-07T12:30:00Z")), false, "Tuesday");
});

Deno.test("window: next opening, also across days and in a time zone", () => {
  assert.equal(nextOpening(NIGHT, at("2024-05-03T12:00:00Z")), at("2024-05-03T22:00:00Z"));
  assert.equal(nextOpening(NIGHT, at("2024-05-03T23:00:00Z")), at("2024-05-03T23:00:00Z"));
  const mon: MaintenanceWindow = { ...NIGHT, days: ["mon"] };
  assert.equal(nextOpening(mon, at("2024-05-03T12:00:00Z")), at("2024-05-06T22:00:00Z"));
  // Berlin is UTC+2 in May: 22:00 local = 20:00Z
  const berlin: MaintenanceWindow = { ...NIGHT, tz: "Europe/Berlin" };
  assert.equal(isOpen(berlin, at("2024-05-03T20:30:00Z")), true);
  assert.equal(isOpen(berlin, at("2024-05-03T19:30:00Z")), false);
  assert.equal(nextOpening(berlin, at("2024-05-03T12:00:00Z")), at("2024-05-03T20:00:00Z"));
  // and UTC+1 in January
  assert.equal(nextOpening(berlin, at("2024-01-05T12:00:00Z")), at("2024-01-05T21:00:00Z"));
});

Deno.test("window: invalid windows are named", () => {
  assert.match(windowProblem({ ...NIGHT, start: "24:00" })!, /start/);
  assert.match(windowProblem({ ...NIGHT, end: "4:00" })!, /end/);
  assert.match(windowProblem({ ...NIGHT, end: "22:00" })!, /differ/);
  assert.match(windowProblem({ ...NIGHT, tz: "Mars/Olympus" })!, /time zone/);
  assert.match(windowProblem({ ...NIGHT, days: [] })!, /days/);
  assert.equal(windowProblem(NIGHT), null);
  assert.equal(describeWindow({ ...NIGHT, days: ["sat", "sun"] }), "22:00-04:00 UTC (sat, sun)");
});

/**
 * One step of a campaign: apply what the driver observed, time out overdue devices, recount
 * the waves, then move the campaign on. Pure; see {@linkcode ./campaigns.ts} for the states.
 * @module
 */
import { describeWindow, isOpen, nextOpening } from "./maintenance_window.ts";
import {
  type Action,
  type Campaign,
  type CampaignEvent,
  type CampaignState,
  type DeviceRecord,
  isInFlight,
  isTerminal,
  LIMITS,
  type Observation,
  stateEvent,
  type StepResult,
  type Wave,
  waveOf,
  zeroCounts,
} from "./campaign_model.ts";
import { clip, interpret, moved } from "./campaign_device.ts";

/**
 * One step: apply what was observed, time out overdue devices, recount the waves, then move
 * the campaign on (release the next wave, pause, complete, wait for the window, offer,
 * withdraw). Pure: `c` and `devices` are not changed.
 */
export function step(
  c: Campaign,
  devices: readonly DeviceRecord[],
  obs: readonly Observation[],
  now: number,
): StepResult {
  const updates = new Map<number, DeviceRecord>();
  const events: CampaignEvent[] = [];
  const actions: Action[] = [];
  let dropped = 0;
  let deviceEvents = 0;
  const cur = (i: number) => updates.get(i) ?? devices[i];
  const set = (i: number, rec: DeviceRecord) => {
    updates.set(i, rec);
    if (deviceEvents++ >= LIMITS.deviceEventsPerStep) {
      dropped++;
      return;
    }
    const e: CampaignEvent = {
      event: "device",
      device: rec.id,
      wave: waveOf(c, i) + 1,
      state: rec.state,
      progress: rec.progress,
      version: rec.version,
    };
    if (rec.state === "failed" && rec.error) e.error = rec.error;
    events.push(e);
  };

  // 1. what the driver saw
  for (const o of obs) {
    const d = cur(o.device);
    if (!d) continue;
    switch (o.kind) {
      case "offered":
        // recorded even when cancelled meanwhile: the offer is out and must be withdrawn
        if (d.state === "pending") {
          set(o.device, moved(d, { state: "sent", progress: null }, o.ts, o.ts));
        }
        break;
      case "offer_failed":
        if (d.state === "pending" && o.permanent) {
          set(o.device, moved(d, { state: "failed", error: clip(o.error) }, now));
        }
        break;
      case "withdrawn":
        if (d.state === "sent") set(o.device, moved(d, { state: "cancelled" }, o.ts));
        break;
      case "gone":
        if (d.state === "pending" || isInFlight(d.state)) {
          set(o.device, moved(d, { state: "failed", error: "the twin no longer exists" }, now));
        }
        break;
      case "report": {
        if (!isInFlight(d.state)) break;
        const r = interpret(c, d, o.firmware, o.changedAt);
        if (!r) break;
        if (r.state === d.state && r.progress === d.progress) break;
        set(o.device, moved(d, r, now));
        break;
      }
    }
  }

  // 2. timeouts
  const timeout = c.spec.timeoutMinutes;
  if (timeout !== undefined && !isTerminal(c.state)) {
    const limit = timeout * 60_000;
    for (let i = 0; i < devices.length; i++) {
      const d = cur(i);
      if (isInFlight(d.state) && d.offeredAt !== null && now - d.offeredAt >= limit) {
        set(i, moved(d, { state: "failed", error: `timed out after ${timeout} minutes` }, now));
      }
    }
  }

  // 3. recount
  let next: Campaign = {
    ...c,
    waves: c.waves.map((w) => {
      const counts = zeroCounts();
      for (let i = w.first; i < w.first + w.size; i++) counts[cur(i).state]++;
      return { ...w, counts };
    }),
  };

  // 4. move on
  // a state event when the state changes (a new reason alone is not news: waves have events)
  const to = (state: CampaignState, reason: string, patch: Partial<Campaign> = {}) => {
    if (next.state === state && next.reason === reason) return;
    const changed = next.state !== state;
    next = { ...next, ...patch, state, reason };
    if (changed) events.push(stateEvent(next));
  };
  const wave = (i: number, w: Partial<Wave>) => {
    next = { ...next, waves: next.waves.map((x, j) => j === i ? { ...x, ...w } : x) };
  };

  if (next.state === "cancelled") {
    // not started: withdraw (after a last look at the twin, by the driver) or drop
    let budget = LIMITS.offersPerStep;
    let left = 0;
    for (let i = 0; i < devices.length; i++) {
      const d = cur(i);
      if (d.state === "pending") set(i, moved(d, { state: "cancelled" }, now));
      else if (d.state === "sent") {
        left++;
        if (budget-- > 0) actions.push({ kind: "withdraw", device: i, twin: d.id });
      }
    }
    if (left === 0 && next.cleanup) next = { ...next, cleanup: false };
    if (updates.size > 0) {
      next = {
        ...next,
        waves: next.waves.map((w) => {
          const counts = zeroCounts();
          for (let i = w.first; i < w.first + w.size; i++) counts[cur(i).state]++;
          return { ...w, counts };
        }),
      };
    }
  } else if (next.state === "running" || next.state === "waiting_window") {
    advance();
  }

  function advance() {
    const s = next.spec;
    // error threshold: any started wave (stragglers of earlier waves count too)
    for (const w of next.waves) {
      if (w.startedAt === null || w.override || w.size === 0) continue;
      if (w.counts.failed / w.size >= s.errorThreshold) {
        to(
          "paused",
          `error threshold ${s.errorThreshold} reached in wave ${w.number} ` +
            `(${w.counts.failed} of ${w.size} failed)`,
          { pausedBy: "error_threshold" },
        );
        return;
      }
    }
    for (;;) {
      const i = next.wave;
      const w = next.waves[i];
      const k = w.counts;
      const last = i === next.waves.length - 1;
      const inFlight = k.sent + k.downloading + k.installing;
      if (k.pending === 0) {
        if (!last) {
          const met = w.size === 0 || k.done / w.size >= s.successThreshold;
          if (met || (w.override && inFlight === 0)) {
            wave(i, { finishedAt: now, startedAt: w.startedAt ?? now });
            events.push({ event: "wave", wave: w.number, phase: "finished", counts: k });
            next = { ...next, wave: i + 1 };
            continue;
          }
          if (inFlight === 0) {
            to(
              "paused",
              `wave ${w.number} ended with ${k.done} of ${w.size} done, below the success ` +
                `threshold ${s.successThreshold}`,
              { pausedBy: "success_threshold" },
            );
            return;
          }
          to("running", `wave ${w.number} of ${next.waves.length} in progress`);
          return;
        }
        // the last wave is out: done when every device of every wave has finished
        if (next.waves.every((x) => x.counts.pending + inFlightOf(x) === 0)) {
          const all = next.waves.reduce((a, x) => a + x.counts.done, 0);
          const failed = next.waves.reduce((a, x) => a + x.counts.failed, 0);
          if (w.finishedAt === null) {
            wave(i, { finishedAt: now, startedAt: w.startedAt ?? now });
            events.push({ event: "wave", wave: w.number, phase: "finished", counts: k });
          }
          to("completed", `${all} of ${next.total} done, ${failed} failed`, { finishedAt: now });
          return;
        }
        to("running", `wave ${w.number} of ${next.waves.length} in progress`);
        return;
      }
      // devices of this wave wait for their offer
      const mw = s.maintenanceWindow;
      if (mw && !isOpen(mw, now)) {
        const at = nextOpening(mw, now);
        to(
          "waiting_window",
          `maintenance window ${describeWindow(mw)} is closed` +
            (at !== null ? `; it opens at ${new Date(at).toISOString()}` : ""),
        );
        return;
      }
      to("running", `wave ${w.number} of ${next.waves.length} in progress`);
      if (w.startedAt === null) {
        wave(i, { startedAt: now });
        events.push({ event: "wave", wave: w.number, phase: "started", counts: k });
      }
      let budget = LIMITS.offersPerStep;
      for (let j = w.first; j < w.first + w.size && budget > 0; j++) {
        if (cur(j).state === "pending") {
          actions.push({ kind: "offer", device: j, twin: cur(j).id });
          budget--;
        }
      }
      return;
    }
  }

  return { campaign: next, updates, actions, events, droppedEvents: dropped };
}

const inFlightOf = (w: Wave) => w.counts.sent + w.counts.downloading + w.counts.installing;

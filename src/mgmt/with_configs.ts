/**
 * Config templates applied on provisioning: a {@linkcode TwinService} whose `putAttributes`
 * then applies the templates that select the twin.
 * @module
 */
import type { JsonObject } from "../../actors/json.ts";
import type { TwinState } from "../../actors/twin.ts";
import type { TwinService } from "../runtime/twin_service.ts";
import type { ConfigService } from "./configs.ts";

/**
 * `twins`, except that `putAttributes` then applies the config templates that newly select
 * the twin (see {@linkcode ConfigService.onAttributes}). The templates are read after the
 * attributes are durable and a template's PUT lists the twins after storing it, so a twin
 * provisioned while a template is stored gets it from one side or the other. It resolves with the twin as
 * provisioned (its `version` says whether it was created); the templates' patches follow it.
 * Every other method is `twins`' own, including ones added to {@linkcode TwinService} later.
 */
export function withConfigs(twins: TwinService, configs: ConfigService): TwinService {
  const putAttributes = async (id: string, attributes: JsonObject): Promise<TwinState> => {
    const state = await twins.putAttributes(id, attributes);
    await configs.onAttributes(state);
    return state;
  };
  // Plain delegation, bound once: every read (`GET /v1/twins/{id}`) goes through here, and a
  // Proxy that binds on each access cost the hot path measurably. A method added to
  // TwinService fails to compile here until it is delegated.
  return {
    putAttributes,
    get: (id) => twins.get(id),
    patchDesired: (id, patch, ifMatch) => twins.patchDesired(id, patch, ifMatch),
    sendCommand: (id, command) => twins.sendCommand(id, command),
    commands: (id) => twins.commands(id),
    commandsListening: (id) => twins.commandsListening(id),
    diagnostics: (id) => twins.diagnostics(id),
    list: (after, limit, filter) => twins.list(after, limit, filter),
    listAlarms: (q) => twins.listAlarms(q),
    ackAlarm: (id, comment) => twins.ackAlarm(id, comment),
    ruleStatus: (twin) => twins.ruleStatus(twin),
  };
}

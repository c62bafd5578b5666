/**
 * I/O side of device-profile rules: delivery of webhook actions.
 * The pure rules engine lives in `actors/rules/`.
 * @module
 */
export {
  redactUrl,
  type WebhookOutcome,
  type WebhookRequest,
  WebhookSender,
  type WebhookSenderOptions,
} from "./webhook.ts";

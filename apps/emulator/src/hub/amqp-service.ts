import { randomUUID } from 'node:crypto';
import rhea, { type Delivery, type EventContext, type Receiver, type Sender } from 'rhea';
import { clip } from '../core/client-text.js';
import type { HubAmqpEndpoint } from './amqp.js';
import { C2D_SERVICE_ADDRESS, c2dOfServiceMessage, rejectionOf } from './amqp-service-messages.js';

/** Where `azure-iothub`'s `getFeedbackReceiver` attaches (its `_feedbackEndpoint`). */
export const C2D_FEEDBACK_ADDRESS = '/messages/servicebound/feedback';
/** IoT Hub's feedback message content type (azure-docs iot-hub-devguide-messages-c2d). */
export const C2D_FEEDBACK_CONTENT_TYPE = 'application/vnd.microsoft.iothub.feedback.json';
/** Records in one feedback message at most. */
const FEEDBACK_BATCH = 100;
/**
 * How often a feedback link looks for records written by another process on the store (`--workers`);
 * this process's own are sent at once. IoT Hub itself batches feedback, so a delay is faithful.
 */
const FEEDBACK_POLL_MS = 1000;

import type { HubService } from './core/hub-service.js';

/**
 * Messages the service may send on its `/messages/devicebound` link before the hub has settled
 * them: azure-iothub sends one at a time (it waits for each disposition), so a small window
 * serves it and bounds what a client may have in flight.
 */
export const C2D_SERVICE_CREDIT = 10;

/**
 * IoT Hub's AMQP service endpoint for cloud-to-device messages, as `azure-iothub`'s `Client.send`
 * uses it (azure-iothub `Amqp`: CBS put-token with a policy token `sr={hub}`, then a sender link to
 * `/messages/devicebound`, each message `to: /devices/{id}/messages/devicebound`). A link there from
 * a connection whose put-tokens hold no service authorization (ServiceConnect) is closed
 * `amqp:unauthorized-access`; a link where the hub would send is refused `amqp:not-allowed`. Each
 * message is queued for its device (`HubService.sendCloudToDevice`) and accepted, or rejected with
 * IoT Hub's refusal as the AMQP condition the SDK translates (`rejectionOf`).
 */
export function c2dServiceEndpoint(hub: HubService): HubAmqpEndpoint {
  return {
    attach(link, address, context) {
      if (address.toLowerCase() === C2D_FEEDBACK_ADDRESS) return attachFeedback(hub, link, context);
      if (address.toLowerCase() !== C2D_SERVICE_ADDRESS) return false;
      const { amqp } = context;
      const service = context.service(C2D_SERVICE_ADDRESS);
      if (!isReceiver(link)) {
        link.close({
          condition: 'amqp:not-allowed',
          description: `${C2D_SERVICE_ADDRESS} takes messages from the service; nothing is sent from it.`,
        });
        return true;
      }
      if (!service) {
        amqp.log.debug('hub.amqp', `${amqp.peer}: a ${C2D_SERVICE_ADDRESS} link without a service token; refused`);
        link.close({
          condition: 'amqp:unauthorized-access',
          description: `Sending cloud-to-device messages needs a put-token of a policy with ServiceConnect whose sr reaches it ({hub}, {hub}/messages) first.`,
        });
        return true;
      }
      context.onMessage(link, ({ message, delivery }) => {
        const parsed = c2dOfServiceMessage(message);
        if (!parsed.ok) {
          delivery?.reject(parsed.rejection);
        } else {
          try {
            hub.sendCloudToDevice(service.hub, parsed.deviceId, parsed.outgoing);
            delivery?.accept();
          } catch (err) {
            const rejection = rejectionOf(err);
            if (!rejection)
              amqp.log.error(
                'hub.amqp',
                `${clip(parsed.deviceId)} on ${service.hub}: cloud-to-device message not queued: ${(err as Error).message}`,
              );
            delivery?.reject(rejection ?? { condition: 'amqp:internal-error', description: 'Internal server error.' });
          }
        }
        amqp.grantCredit(link, 1);
      });
      amqp.grantCredit(link, C2D_SERVICE_CREDIT);
      return true;
    },
  };
}

/**
 * `getFeedbackReceiver`'s link: the hub's feedback records (the outcomes of messages whose sender
 * asked for them, `iothub-ack`), sent as IoT Hub's feedback message (a JSON array of records,
 * content type application/vnd.microsoft.iothub.feedback.json), one message at a time: the records
 * are locked to the link until the service accepts the message (completed: gone) or releases,
 * rejects or modifies it, or the link closes (available again).
 */
function attachFeedback(
  hub: HubService,
  link: Sender | Receiver,
  context: Parameters<HubAmqpEndpoint['attach']>[2],
): boolean {
  const { amqp } = context;
  const service = context.service(C2D_FEEDBACK_ADDRESS);
  if (isReceiver(link)) {
    link.close({
      condition: 'amqp:not-allowed',
      description: `${C2D_FEEDBACK_ADDRESS} sends feedback to the service; it takes none.`,
    });
    return true;
  }
  if (!service) {
    link.close({
      condition: 'amqp:unauthorized-access',
      description:
        'Receiving feedback needs a put-token of a policy with ServiceConnect whose sr reaches it ({hub}, {hub}/messages) first.',
    });
    return true;
  }
  const holder = randomUUID();
  let inFlight: { delivery: Delivery; seqs: number[] } | undefined;
  let closed = false;
  const pump = () => {
    if (closed || inFlight || !link.is_open() || !link.sendable()) return;
    try {
      const taken = hub.takeFeedback(service.hub, holder, FEEDBACK_BATCH);
      if (taken.length === 0) return;
      const delivery = amqp.send(link, {
        message_id: randomUUID(),
        content_type: C2D_FEEDBACK_CONTENT_TYPE,
        user_id: Buffer.from(service.hub.split('.')[0] ?? service.hub),
        body: rhea.message.data_section(Buffer.from(JSON.stringify(taken.map((t) => t.record)))),
      });
      const seqs = taken.map((t) => t.seq);
      if (delivery) inFlight = { delivery, seqs };
      else hub.settleFeedback(seqs, false);
    } catch (err) {
      amqp.log.error('hub.amqp', `${service.hub}: cloud-to-device feedback not sent: ${(err as Error).message}`);
    }
  };
  const settled = (complete: boolean) => (ctx: EventContext) => {
    if (!inFlight || ctx.delivery !== inFlight.delivery) return;
    const { seqs } = inFlight;
    inFlight = undefined;
    try {
      hub.settleFeedback(seqs, complete);
    } catch (err) {
      amqp.log.error('hub.amqp', `${service.hub}: cloud-to-device feedback not settled: ${(err as Error).message}`);
    }
    pump();
  };
  link.on('accepted', settled(true));
  for (const outcome of ['rejected', 'released', 'modified'] as const) link.on(outcome, settled(false));
  link.on('sendable', pump);
  const stopListening = hub.onFeedback((name) => {
    if (name.toLowerCase() === service.hub.toLowerCase()) pump();
  });
  const timer = setInterval(pump, FEEDBACK_POLL_MS);
  timer.unref();
  context.onClose(link, () => {
    closed = true;
    clearInterval(timer);
    stopListening();
    try {
      hub.releaseFeedback(holder);
    } catch (err) {
      amqp.log.error('hub.amqp', `${service.hub}: cloud-to-device feedback not released: ${(err as Error).message}`);
    }
  });
  pump();
  return true;
}

function isReceiver(link: Sender | Receiver): link is Receiver {
  return link.is_receiver();
}

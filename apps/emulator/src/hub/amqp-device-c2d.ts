import { randomUUID } from 'node:crypto';
import type { Delivery, EventContext, Sender } from 'rhea';
import { clip } from '../core/client-text.js';
import { creditLeft } from '../transport/amqp-sender-credit.js';
import type { HubAmqpConnectionContext } from './amqp.js';
import { c2dDeviceMessage, lockTokenTag } from './amqp-device-c2d-messages.js';
import { type C2dSettlement, MAX_C2D_IN_FLIGHT } from './core/c2d.js';
import type { HubService } from './core/hub-service.js';

/** A device's cloud-to-device link on one connection: `pump` sends what waits Enqueued. */
export interface C2dDeviceLink {
  readonly sender: Sender;
  /** Sends the device's Enqueued messages while the link has credit (a `c2d` push, a settlement). */
  pump(): void;
}

/**
 * The outcome a device's disposition gives its message: accepted completes it, rejected rejects
 * it (dead-lettered), released and modified abandon it (azure-iot-amqp-base's `abandon` releases
 * the delivery; AMQP's modified is the other "not processed" outcome).
 */
const SETTLEMENTS: Readonly<Record<'accepted' | 'rejected' | 'released' | 'modified', C2dSettlement>> = {
  accepted: 'complete',
  rejected: 'reject',
  released: 'abandon',
  modified: 'abandon',
};

/**
 * Serves a device's receiver link from `/devices/{id}/messages/devicebound` (azure-iot-device-amqp's
 * C2D link, attached by `client.on('message', …)`): each Enqueued message of the device's queue is
 * taken (locked to this link, hub/core/c2d.ts) and sent unsettled, its lock token as the delivery
 * tag and `x-opt-lock-token` (amqp-device-c2d-messages.ts); the device's disposition settles it
 * through the same core as MQTT's PUBACK and HTTPS's DELETE/abandon (SETTLEMENTS). The lock lasts
 * as long as the link holds the delivery unsettled: when the link or its connection closes, the
 * messages it holds are Enqueued again (delivery count unchanged), as an MQTT connection's are.
 * At most MAX_C2D_IN_FLIGHT unsettled, no more than the device's credit, and within the places
 * its connection shares among its devices' links (C2dConnectionShare).
 */
export function attachC2dDeviceLink(
  hub: HubService,
  device: { hub: string; deviceId: string },
  sender: Sender,
  context: HubAmqpConnectionContext,
): C2dDeviceLink {
  /** Holds the locks of the messages this link was given (releaseCloudToDevice's connection). */
  const holder = `${context.name}/${randomUUID()}`;
  const inFlight = new Map<Delivery, string>();
  /** Messages given to rhea on the link (its credit counts them as rhea writes them: see creditLeft). */
  let given = 0;
  let pumping = false;
  let closed = false;
  const who = `${clip(device.deviceId)} on ${device.hub}`;

  const pump = () => {
    if (pumping || closed || !sender.is_open()) return;
    pumping = true;
    try {
      while (sender.sendable() && creditLeft(sender, given) > 0 && inFlight.size < MAX_C2D_IN_FLIGHT) {
        // A place among the connection's (its other devices' links hold theirs): else in line for one.
        if (!context.c2d.take(pump)) break;
        let sent = false;
        try {
          const message = hub.receiveCloudToDevice(device.hub, device.deviceId, 'amqp', holder);
          const token = message?.lock?.token;
          // Undefined: the connection is closing (its unsettled bound); the lock goes with the link.
          const delivery =
            message && token !== undefined
              ? context.amqp.send(sender, c2dDeviceMessage(message), lockTokenTag(token))
              : undefined;
          if (delivery && token !== undefined) {
            inFlight.set(delivery, token);
            given += 1;
            sent = true;
          }
        } finally {
          // Nothing waited, the connection is closing, or the store failed: the place goes back.
          if (!sent) context.c2d.give(1);
        }
        if (!sent) break;
      }
    } catch (err) {
      context.amqp.log.error('hub.amqp', `${who}: cloud-to-device messages not sent: ${(err as Error).message}`);
    } finally {
      pumping = false;
    }
  };

  const settle = (outcome: keyof typeof SETTLEMENTS) => (ctx: EventContext) => {
    const token = ctx.delivery ? inFlight.get(ctx.delivery) : undefined;
    if (!ctx.delivery || token === undefined) return;
    inFlight.delete(ctx.delivery);
    try {
      hub.settleCloudToDevice(device.hub, device.deviceId, token, SETTLEMENTS[outcome], 'amqp');
    } catch (err) {
      // Its lock lost meanwhile (the device deleted and created again, say): nothing to settle.
      context.amqp.log.debug(
        'hub.amqp',
        `${who}: a cloud-to-device disposition not applied: ${(err as Error).message}`,
      );
    }
    // The place goes to the links in line first (the connection's other devices), then this one.
    context.c2d.give(1);
    pump();
  };
  for (const outcome of Object.keys(SETTLEMENTS) as (keyof typeof SETTLEMENTS)[]) sender.on(outcome, settle(outcome));
  // Credit from the device (its receiver's window): the queue is sent as it allows.
  sender.on('sendable', pump);

  context.onClose(sender, () => {
    closed = true;
    context.c2d.leave(pump);
    const held = inFlight.size;
    inFlight.clear();
    context.c2d.give(held);
    try {
      hub.releaseCloudToDevice(holder);
    } catch (err) {
      context.amqp.log.error(
        'hub.amqp',
        `${who}: cloud-to-device messages of the closed link not put back: ${(err as Error).message}`,
      );
    }
  });
  return { sender, pump };
}

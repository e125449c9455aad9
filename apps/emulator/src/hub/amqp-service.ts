import type { Receiver, Sender } from 'rhea';
import { clip } from '../core/client-text.js';
import type { HubAmqpEndpoint } from './amqp.js';
import { C2D_SERVICE_ADDRESS, c2dOfServiceMessage, rejectionOf } from './amqp-service-messages.js';
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
      if (address.toLowerCase() !== C2D_SERVICE_ADDRESS) return false;
      const { amqp } = context;
      const service = context.service();
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
          description: `Sending cloud-to-device messages needs a put-token of a policy with ServiceConnect (sr={hub}) first.`,
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

function isReceiver(link: Sender | Receiver): link is Receiver {
  return link.is_receiver();
}

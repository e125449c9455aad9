// MQTT packets as bytes, for tests that write to a socket exactly what a client would (several
// packets in one write, a malformed one after them) rather than through a client library.
import { createRegistrationSasToken } from '@dpskit/contracts';
import mqttPacket from 'mqtt-packet';
import { groupDeviceKey, ID_SCOPE } from './fixtures.js';

/** The DPS MQTT user name for this registration id, as the raw tests present it. */
export const dpsUsername = (id: string): string =>
  `${ID_SCOPE}/registrations/${id}/api-version=2019-03-31&ClientVersion=raw`;

/** A SAS token for this id under the fixtures' `hashed` group. */
export const dpsToken = (id: string): string =>
  createRegistrationSasToken({ idScope: ID_SCOPE, registrationId: id, key: groupDeviceKey('hashed', id) });

/** CONNECT (MQTT 3.1.1, this id's SAS token) and SUBSCRIBE to the response topics, as bytes. */
export function connectAndSubscribe(id: string): Buffer {
  return Buffer.concat([
    mqttPacket.generate({
      cmd: 'connect',
      clientId: id,
      username: dpsUsername(id),
      password: Buffer.from(dpsToken(id)),
      protocolVersion: 4,
      clean: true,
      keepalive: 0,
    }),
    mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: '$dps/registrations/res/#', qos: 1 }],
    }),
  ]);
}

import { createHmac } from 'node:crypto';
import { createSasToken, DpsErrorCode, generateSymmetricKey, registrationResource } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { closedPortUrl, groupDeviceKey, ID_SCOPE } from '../testing/fixtures.js';
import { rawRequest } from '../testing/raw-https.js';
import { connectRawDevice } from '../testing/raw-mqtt.js';
import { startTestBed } from '../testing/test-bed.js';

// Issue 8 items 3-5: every malformed token variant is refused with the transport's 401 answer,
// and the token styles of the Node, Python and C SDKs keep provisioning, over MQTT and HTTPS.

let emulator: Emulator;
let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  const unused = await closedPortUrl();
  ({ emulator, close } = await startTestBed(unused, unused));
});
afterAll(async () => close?.());

const EXPIRES = Math.ceil(Date.now() / 1000) + 3600;
const sign = (key: string, sr: string) =>
  createHmac('sha256', Buffer.from(key, 'base64')).update(`${sr}\n${EXPIRES}`).digest('base64');

/** The token styles of the official SDKs (see shared/notes/dps-device-protocol.md §4.4). */
function sdkTokens(id: string): { node: string; python: string; c: string } {
  const key = groupDeviceKey('hashed', id);
  const resource = registrationResource(ID_SCOPE, id);
  const lower = encodeURIComponent(resource).replace(/%2F/g, '%2f');
  return {
    node: createSasToken({ resource, key, expiresAt: EXPIRES }),
    // Python: encoded sr, no skn.
    python: `SharedAccessSignature sr=${encodeURIComponent(resource)}&sig=${encodeURIComponent(sign(key, encodeURIComponent(resource)))}&se=${EXPIRES}`,
    // C: lower-case percent-encoding, skn last.
    c: `SharedAccessSignature sr=${lower}&sig=${encodeURIComponent(sign(key, lower))}&se=${EXPIRES}&skn=registration`,
  };
}

function badTokens(id: string): Record<string, string> {
  const good = sdkTokens(id).node;
  const sig = /sig=([^&]*)/.exec(good)?.[1] ?? '';
  const raw = decodeURIComponent(sig);
  return {
    'skn=iothubowner': good.replace('skn=registration', 'skn=iothubowner'),
    'skn=provisioningserviceowner': good.replace('skn=registration', 'skn=provisioningserviceowner'),
    'empty skn': good.replace('skn=registration', 'skn='),
    'junk after the signature': good.replace(`sig=${sig}`, `sig=${sig}junk`),
    'base64url signature': good.replace(`sig=${sig}`, `sig=${Buffer.from(raw, 'base64').toString('base64url')}`),
    'unpadded signature': good.replace(`sig=${sig}`, `sig=${raw.slice(0, -1)}`),
    'unknown 12 KB field': `${good}&x=${'a'.repeat(12 * 1024)}`,
    'no expiry': good.replace(`&se=${EXPIRES}`, ''),
    'wrong key': createSasToken({
      resource: registrationResource(ID_SCOPE, id),
      key: generateSymmetricKey(),
      expiresAt: EXPIRES,
    }),
  };
}

const registerBody = (id: string) => JSON.stringify({ registrationId: id });

async function httpsRegister(id: string, token: string) {
  return rawRequest(emulator, {
    method: 'PUT',
    path: `/${ID_SCOPE}/registrations/${id}/register?api-version=2019-03-31`,
    headers: { Authorization: token },
    body: registerBody(id),
  });
}

async function mqttRegister(id: string, token: string) {
  const device = await connectRawDevice(emulator, {
    clientId: id,
    username: `${ID_SCOPE}/registrations/${id}/api-version=2019-03-31`,
    password: token,
  });
  try {
    await new Promise<void>((resolve, reject) =>
      device.client.subscribe('$dps/registrations/res/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())),
    );
    return await device.request('$dps/registrations/PUT/iotdps-register/?$rid=1', registerBody(id), '1');
  } finally {
    await device.end();
  }
}

describe('strict SAS tokens on both transports', () => {
  it.each(['node', 'python', 'c'] as const)('provisions with the %s SDK token style', async (style) => {
    const id = `hashed-style-${style}`;
    const token = sdkTokens(id)[style];
    expect((await httpsRegister(id, token)).status).toBe(202);
    expect((await mqttRegister(id, token)).status).toBe(202);
  });

  it('refuses every malformed variant with 401 over HTTPS (401002) and exactly as a wrong key over MQTT', async () => {
    const id = 'hashed-bad-token';
    const variants = Object.entries(badTokens(id));
    // Whatever code MQTT uses for an authentication failure (a wrong key is the reference), every
    // malformed token must get the same answer.
    const reference = await mqttRegister(id, badTokens(id)['wrong key'] as string);
    expect(reference.status).toBe(401);
    const mqttCode = (reference.body as { errorCode: number }).errorCode;
    expect(Math.floor(mqttCode / 1000)).toBe(401);
    for (const [name, token] of variants) {
      const https = await httpsRegister(id, token);
      expect({ name, status: https.status, code: (https.json as { errorCode?: number }).errorCode }).toEqual({
        name,
        status: 401,
        code: DpsErrorCode.Unauthorized,
      });
      const mqtt = await mqttRegister(id, token);
      expect({ name, status: mqtt.status, code: (mqtt.body as { errorCode?: number }).errorCode }).toEqual({
        name,
        status: 401,
        code: mqttCode,
      });
    }
  });
});

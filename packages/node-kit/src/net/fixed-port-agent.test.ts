import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedPortAgent } from './fixed-port-agent.js';

describe('fixedPortAgent', () => {
  let server: https.Server;
  let port: number;
  let ca: string;

  beforeAll(async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
    });
    ca = pems.cert;
    server = https.createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
      res.end(JSON.stringify({ host: req.headers.host, url: req.url }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends a request for port 443 to its own port, with TLS checked against the URL host', async () => {
    const agent = fixedPortAgent(port, { ca });
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get('https://localhost:443/$iothub/websocket', { agent }, (res) => {
          let text = '';
          res.on('data', (chunk) => {
            text += chunk;
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toEqual({ host: 'localhost', url: '/$iothub/websocket' });
    agent.destroy();
  });

  it('refuses a port out of range', () => {
    expect(() => fixedPortAgent(0)).toThrow(/port must be an integer from 1 to 65535, not 0/);
  });
});

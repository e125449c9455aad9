import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FAILED_OPERATION } from '../fixtures/tutorial.js';
import { parseJsonWith } from '../schema/parse.js';
import {
  deviceRegistrationSchema,
  parseDeviceRegistrationJson,
  parseRegistrationOperationStatusJson,
} from './status.js';

describe('registration shapes', () => {
  it('parses the real failed-operation capture', () => {
    const result = parseRegistrationOperationStatusJson(FAILED_OPERATION);
    if (!result.ok) throw result.error;
    expect(result.value.status).toBe('failed');
    expect(result.value.registrationState?.errorCode).toBe(400207);
    expect(result.value.registrationState?.errorMessage).toBe('Custom allocation failed with status code: 400');
  });

  it('parses an assigned operation with a webhook payload and group id', () => {
    const result = parseRegistrationOperationStatusJson(
      JSON.stringify({
        operationId: '4.17252aac68733575.69153b4c-3a91-4dab-b634-98ca044fdde0',
        status: 'assigned',
        registrationState: {
          registrationId: 'contoso-toaster-007',
          assignedHub: 'contoso-toasters-hub-1098.azure-devices.net',
          deviceId: 'contoso-toaster-007',
          status: 'assigned',
          substatus: 'initialAssignment',
          payload: { hello: 'device' },
          symmetricKey: { enrollmentGroupId: 'contoso-custom-allocated-devices' },
        },
      }),
    );
    if (!result.ok) throw result.error;
    expect(result.value.registrationState?.symmetricKey?.enrollmentGroupId).toBe('contoso-custom-allocated-devices');
  });

  it('rejects an unknown status, naming it', () => {
    const result = parseRegistrationOperationStatusJson('{"operationId":"x","status":"done"}');
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.issues[0]?.path).toBe('status');
  });

  it('parses the register body the SDKs send, payload optional', () => {
    const withPayload = parseDeviceRegistrationJson('{"registrationId":"contoso-toaster-007","payload":{"a":1}}');
    expect(withPayload.ok && withPayload.value.payload).toEqual({ a: 1 });
    expect(parseDeviceRegistrationJson('{"registrationId":"contoso-toaster-007"}').ok).toBe(true);
    const stringPayload = parseDeviceRegistrationJson('{"registrationId":"x","payload":"text"}');
    expect(stringPayload.ok).toBe(false);
    if (!stringPayload.ok) expect(stringPayload.error.issues[0]?.path).toBe('payload');
  });

  it('reads an id-only body by its pattern exactly as the JSON parse and the schema do', () => {
    // Ids of up to 3 characters from those that matter to JSON strings (quote, backslash, control
    // characters, DEL, non-ASCII, lone surrogates, escapes), in the SDKs' body, and of up to 2 in
    // every wrapper near it.
    const chars = [
      'a',
      '-',
      '"',
      '\\',
      '\\"',
      '\\u0041',
      '\u0000',
      '\u001f',
      ' ',
      '\u007f',
      'é',
      '€',
      '\ud800',
      '\udc00',
      '}',
      '/',
    ];
    const ids = [''];
    for (let length = 1, last = ['']; length <= 3; length++) {
      last = last.flatMap((id) => chars.map((c) => id + c));
      ids.push(...last);
    }
    const wrappers = [
      (id: string) => `{"registrationId":"${id}"}`,
      (id: string) => `{ "registrationId":"${id}"}`,
      (id: string) => `{"registrationId":"${id}"} `,
      (id: string) => `{"registrationId":"${id}"}}`,
      (id: string) => `{"registrationId":"${id}","payload":{}}`,
      (id: string) => `{"registrationId":"${id}","registrationId":"b"}`,
      (id: string) => `{"registrationid":"${id}"}`,
      (id: string) => `{"registrationId":${id}}`,
      (id: string) => `[{"registrationId":"${id}"}]`,
    ];
    const differing: string[] = [];
    let checked = 0;
    let ids1 = 0;
    for (const id of ids) {
      for (const wrap of id.length <= 2 ? wrappers : wrappers.slice(0, 1)) {
        const text = wrap(id);
        for (const bounds of [{}, { maxDepth: 64 }, { maxDepth: 1 }, { maxDepth: 0 }]) {
          const got = parseDeviceRegistrationJson(text, bounds);
          const expected = parseJsonWith(deviceRegistrationSchema, text, 'device registration', bounds);
          const same = got.ok
            ? expected.ok && isDeepStrictEqual(got.value, expected.value)
            : !expected.ok && got.error.message === expected.error.message;
          if (!same) differing.push(`${JSON.stringify(text)} ${JSON.stringify(bounds)}`);
          if (got.ok && wrap === wrappers[0]) ids1 += 1;
          checked += 1;
        }
      }
    }
    expect(differing).toEqual([]);
    expect(checked).toBeGreaterThan(20_000);
    // Accepted ids in the SDKs' own body: the pattern's path was taken (and compared) many times.
    expect(ids1).toBeGreaterThan(1_000);
  });

  it('takes a csr (base64 DER, no PEM armour) in a register body and issuedCertificateChain in a result', () => {
    const csr = parseDeviceRegistrationJson('{"registrationId":"x","csr":"MIIBQzCB6QIBADA="}');
    expect(csr.ok && csr.value.csr).toBe('MIIBQzCB6QIBADA=');
    const pem = parseDeviceRegistrationJson('{"csr":"-----BEGIN CERTIFICATE REQUEST-----"}');
    expect(pem.ok).toBe(false);
    if (!pem.ok) expect(pem.error.message).toMatch(/csr.*base64 DER/);
    const result = parseRegistrationOperationStatusJson(
      JSON.stringify({
        operationId: 'op',
        status: 'assigned',
        registrationState: { registrationId: 'x', status: 'assigned', issuedCertificateChain: ['MIIB', 'MIIC'] },
      }),
    );
    expect(result.ok && result.value.registrationState?.issuedCertificateChain).toEqual(['MIIB', 'MIIC']);
  });
});

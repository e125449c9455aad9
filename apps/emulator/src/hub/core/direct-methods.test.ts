import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DirectMethods,
  MAX_METHOD_PAYLOAD_BYTES,
  type MethodCallReport,
  MethodError,
  type MethodRequest,
  parseMethodInvocation,
  timeSpan,
} from './direct-methods.js';

const HUB = 'toaster-hub.azure-devices.net';

function invocation(fields: Record<string, unknown> = {}) {
  return parseMethodInvocation(JSON.stringify({ methodName: 'reboot', ...fields }));
}

function refusal(text: string): MethodError {
  try {
    parseMethodInvocation(text);
  } catch (err) {
    if (err instanceof MethodError) return err;
    throw err;
  }
  throw new Error(`${text} was accepted`);
}

describe('parseMethodInvocation', () => {
  it('reads the body azure-iothub sends, with IoT Hub defaults', () => {
    expect(
      parseMethodInvocation(
        JSON.stringify({
          methodName: 'reboot',
          payload: { delay: 1 },
          responseTimeoutInSeconds: 200,
          connectTimeoutInSeconds: 7,
        }),
      ),
    ).toEqual({
      methodName: 'reboot',
      payloadJson: '{"delay":1}',
      responseTimeoutInSeconds: 200,
      connectTimeoutInSeconds: 7,
    });
    expect(parseMethodInvocation('{"methodName":"m"}')).toEqual({
      methodName: 'm',
      payloadJson: 'null',
      responseTimeoutInSeconds: 30,
      connectTimeoutInSeconds: 0,
    });
  });

  it('refuses timeouts out of IoT Hub bounds with its 400004 wording', () => {
    for (const value of [4, 301, 7.5, '30']) {
      const error = refusal(JSON.stringify({ methodName: 'm', responseTimeoutInSeconds: value }));
      expect(error).toMatchObject({
        status: 400,
        errorCode: 400004,
        message: 'responseTimeoutInSeconds must be within [5; 300].',
      });
    }
    expect(refusal('{"methodName":"m","connectTimeoutInSeconds":-1}').message).toBe(
      'connectTimeoutInSeconds must be within [0; 300].',
    );
    expect(refusal('{"methodName":"m","connectTimeoutInSeconds":301}').errorCode).toBe(400004);
  });

  it('refuses a missing or unsendable method name, a body that is no object, a payload over 128 KB', () => {
    expect(refusal('{}').message).toBe('methodName is required.');
    expect(refusal('{"methodName":""}').message).toBe('methodName is required.');
    expect(refusal('{"methodName":"a/b"}').message).toMatch(/^methodName "a\/b" holds "\/"/);
    expect(refusal('{"methodName":"a#"}').status).toBe(400);
    expect(refusal('{"methodName":"a\\u0000"}').message).toContain('\\u0000');
    expect(refusal('[1]').message).toMatch(/JSON object/);
    expect(refusal('{').message).toMatch(/^The body is not valid JSON/);
    const big = 'x'.repeat(MAX_METHOD_PAYLOAD_BYTES);
    expect(refusal(JSON.stringify({ methodName: 'm', payload: big })).message).toMatch(
      /'payload' size should be less than 131072 bytes/,
    );
    // Exactly the limit is taken (a string of n characters is n + 2 bytes of JSON).
    expect(invocation({ payload: big.slice(2) }).payloadJson.length).toBe(MAX_METHOD_PAYLOAD_BYTES);
  });

  it('writes durations as .NET TimeSpans', () => {
    expect([timeSpan(0), timeSpan(30), timeSpan(300), timeSpan(3725)]).toEqual([
      '00:00:00',
      '00:00:30',
      '00:05:00',
      '01:02:05',
    ]);
  });
});

describe('DirectMethods', () => {
  let sent: MethodRequest[];
  let reachable: boolean;
  let reports: MethodCallReport[];
  let methods: DirectMethods;

  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    reachable = true;
    reports = [];
    methods = new DirectMethods({ onReport: (r) => reports.push(r), maxPendingPerDevice: 2, maxPending: 3 });
    methods.attach({
      send: (request) => {
        if (!reachable) return undefined;
        sent.push(request);
        return 'connection-1';
      },
    });
  });
  afterEach(() => {
    methods.close();
    vi.useRealTimers();
  });

  it('sends the request and resolves with the device answer', async () => {
    const call = methods.invoke(HUB, 'd1', invocation({ payload: { a: 1 } }));
    expect(sent).toEqual([
      expect.objectContaining({ hub: HUB, deviceId: 'd1', methodName: 'reboot', payloadJson: '{"a":1}' }),
    ]);
    const rid = sent[0]?.rid as string;
    expect(methods.answer(HUB, 'd1', rid, 201, Buffer.from('{"done":true}'))).toBe('answered');
    await expect(call).resolves.toEqual({ status: 201, payload: { done: true } });
    // Answered once: a second answer (or one for a rid never sent) is unknown.
    expect(methods.answer(HUB, 'd1', rid, 200, Buffer.alloc(0))).toBe('unknown');
    expect(methods.answer(HUB, 'd1', 'nope', 200, Buffer.alloc(0))).toBe('unknown');
    expect(methods.pending).toBe(0);
    expect(reports).toEqual([expect.objectContaining({ outcome: 'answered', status: 201, methodName: 'reboot' })]);
  });

  it('gives an empty answer as payload null, and only the device the request went to may answer it', async () => {
    const call = methods.invoke(HUB, 'd1', invocation());
    const rid = sent[0]?.rid as string;
    expect(methods.answer(HUB, 'other', rid, 200, Buffer.alloc(0))).toBe('unknown');
    expect(methods.answer(HUB.toUpperCase(), 'd1', rid, 200, Buffer.alloc(0))).toBe('answered');
    await expect(call).resolves.toEqual({ status: 200, payload: null });
  });

  it('refuses at once, 404103, a device not reachable here with no connect timeout', async () => {
    reachable = false;
    await expect(methods.invoke(HUB, 'd1', invocation())).rejects.toMatchObject({
      status: 404,
      errorCode: 404103,
      code: 'DeviceNotOnline',
      message: 'Timed out waiting for device to connect.',
      info: { timeout: '00:00:00' },
    });
    expect(methods.pending).toBe(0);
  });

  it('waits up to connectTimeoutInSeconds for the device, then sends, then times out 504101', async () => {
    reachable = false;
    const call = methods.invoke(HUB, 'd1', invocation({ connectTimeoutInSeconds: 10, responseTimeoutInSeconds: 5 }));
    const settled = call.catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(sent).toEqual([]);
    reachable = true;
    methods.deviceReady(HUB, 'd1');
    expect(sent).toHaveLength(1);
    // The connect timer is gone: the response timer (5 s) runs from the send.
    await vi.advanceTimersByTimeAsync(4_999);
    expect(methods.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled).toMatchObject({
      status: 504,
      errorCode: 504101,
      code: 'GatewayTimeout',
      message: 'Timed out waiting for the response from device.',
      info: { timeout: '00:00:05' },
    });
    expect(methods.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a waiting call 404103 when the device never comes', async () => {
    reachable = false;
    const settled = methods.invoke(HUB, 'd1', invocation({ connectTimeoutInSeconds: 3 })).catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await settled).toMatchObject({ errorCode: 404103, info: { timeout: '00:00:03' } });
    expect(reports).toEqual([expect.objectContaining({ outcome: 'not-online', status: 404, durationMs: 3_000 })]);
  });

  it('ends the calls sent on a connection that closes (504101), not those waiting', async () => {
    const sentCall = methods.invoke(HUB, 'd1', invocation()).catch((err: unknown) => err);
    reachable = false;
    const waiting = methods.invoke(HUB, 'd1', invocation({ connectTimeoutInSeconds: 60 })).catch((err: unknown) => err);
    methods.connectionClosed('connection-1');
    expect(await sentCall).toMatchObject({
      status: 504,
      errorCode: 504101,
      message: 'The device disconnected before it answered the method.',
    });
    expect(methods.pending).toBe(1);
    methods.close();
    expect(await waiting).toMatchObject({ status: 503 });
  });

  it('fails a call whose answer is not JSON or over 128 KB (502), once', async () => {
    const first = methods.invoke(HUB, 'd1', invocation()).catch((err: unknown) => err);
    expect(methods.answer(HUB, 'd1', sent[0]?.rid as string, 200, Buffer.from('{nope'))).toBe('answered');
    expect(await first).toMatchObject({ status: 502, code: 'InvalidResponseWhileProxying' });
    const second = methods.invoke(HUB, 'd1', invocation()).catch((err: unknown) => err);
    methods.answer(HUB, 'd1', sent[1]?.rid as string, 200, Buffer.alloc(MAX_METHOD_PAYLOAD_BYTES + 1, 0x20));
    expect(await second).toMatchObject({ status: 502, message: expect.stringMatching(/over the 131072-byte limit/) });
  });

  it('bounds the calls in flight per device (403800) and in all (503)', async () => {
    const held = [methods.invoke(HUB, 'd1', invocation()), methods.invoke(HUB, 'd1', invocation())];
    await expect(methods.invoke(HUB, 'd1', invocation())).rejects.toMatchObject({ status: 403, errorCode: 403800 });
    held.push(methods.invoke(HUB, 'd2', invocation()));
    await expect(methods.invoke(HUB, 'd3', invocation())).rejects.toMatchObject({ status: 503, code: 'ServerBusy' });
    const settled = held.map((call) => call.catch((err: unknown) => err));
    methods.close();
    for (const result of await Promise.all(settled)) expect(result).toBeInstanceOf(MethodError);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('uses request ids unique within the process', () => {
    for (let i = 0; i < 2; i += 1) void methods.invoke(HUB, `d${i}`, invocation()).catch(() => {});
    expect(new Set(sent.map((r) => r.rid)).size).toBe(2);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DirectMethods,
  MAX_METHOD_PAYLOAD_BYTES,
  type MethodCallReport,
  MethodError,
  type MethodRequest,
  parseMethodInvocation,
  RELAY_GRACE_MS,
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
      holds: () => reachable,
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

  it('lets a call go when its caller has gone (abort): its slot and timer released, a late answer unknown', async () => {
    // Sent, waiting for the answer (response timer), and one waiting for the device (connect timer).
    const gone = new AbortController();
    const sentCall = methods.invoke(HUB, 'd1', invocation(), undefined, gone.signal).catch((err: unknown) => err);
    reachable = false;
    const waiting = new AbortController();
    const waitingCall = methods
      .invoke(HUB, 'd1', invocation({ connectTimeoutInSeconds: 60 }), undefined, waiting.signal)
      .catch((err: unknown) => err);
    expect([methods.pending, vi.getTimerCount()]).toEqual([2, 2]);
    gone.abort();
    waiting.abort();
    // The old code kept both until their timeouts (pending 2, timers 2).
    expect([methods.pending, vi.getTimerCount()]).toEqual([0, 0]);
    expect(await sentCall).toMatchObject({ status: 499, code: 'ClientClosedRequest' });
    expect(await waitingCall).toMatchObject({ status: 499 });
    expect(reports.map((r) => [r.outcome, r.status])).toEqual([
      ['abandoned', 499],
      ['abandoned', 499],
    ]);
    expect(methods.answer(HUB, 'd1', sent[0]?.rid as string, 200, Buffer.from('{}'))).toBe('unknown');
    // The device's two places are free again (maxPendingPerDevice 2); a call already abandoned is never held.
    reachable = true;
    const again = [methods.invoke(HUB, 'd1', invocation()), methods.invoke(HUB, 'd1', invocation())];
    expect(methods.answer(HUB, 'd1', sent[1]?.rid as string, 200, Buffer.from('1'))).toBe('answered');
    expect(await again[0]).toEqual({ status: 200, payload: 1 });
    void again[1]?.catch(() => {});
    await expect(methods.invoke(HUB, 'd2', invocation(), undefined, AbortSignal.abort())).rejects.toMatchObject({
      status: 499,
    });
    expect(sent).toHaveLength(3);
  });

  it('answers every call after close at once (503), holding none', async () => {
    methods.close();
    const call = methods.invoke(HUB, 'd1', invocation({ connectTimeoutInSeconds: 60 })).catch((err: unknown) => err);
    // Not held: no timer, nothing sent (the old code held it for its connect timeout).
    expect([methods.pending, vi.getTimerCount(), sent.length]).toEqual([0, 0, 0]);
    expect(await call).toMatchObject({ status: 503, message: 'The emulated hub is closing.' });
  });

  it('uses request ids unique within the process', () => {
    for (let i = 0; i < 2; i += 1) void methods.invoke(HUB, `d${i}`, invocation()).catch(() => {});
    expect(new Set(sent.map((r) => r.rid)).size).toBe(2);
  });
});

describe('DirectMethods across processes (a relay between two, as the store is for --workers)', () => {
  /** Process A takes the service's calls; process B holds the device. */
  let a: DirectMethods;
  let b: DirectMethods;
  let sentOnB: MethodRequest[];
  let heldOnB: boolean;
  let subscribedOnB: boolean;
  let relayed: string[];
  let holdingA: boolean[];

  beforeEach(() => {
    vi.useFakeTimers();
    sentOnB = [];
    heldOnB = true;
    subscribedOnB = true;
    relayed = [];
    holdingA = [];
    a = new DirectMethods({ onHolding: (any) => holdingA.push(any) });
    b = new DirectMethods();
    a.attach({ holds: () => false, send: () => undefined });
    b.attach({
      holds: () => heldOnB,
      send: (request) => {
        if (!heldOnB || !subscribedOnB) return undefined;
        sentOnB.push(request);
        return 'b-connection';
      },
    });
    // The store's push table, in memory: each side reads what the other wrote.
    a.relayThrough({
      forward: (request) => {
        relayed.push(`method ${request.methodName}`);
        b.deliverRelayed(request);
      },
      reply: () => {
        throw new Error('A holds no device');
      },
    });
    b.relayThrough({
      forward: () => {
        throw new Error('B takes no call');
      },
      reply: (end) => {
        relayed.push(`end ${end.kind}`);
        a.relayEnded(end);
      },
    });
  });
  afterEach(() => {
    a.close();
    b.close();
    vi.useRealTimers();
  });

  it('forwards a call for a device connected elsewhere; the device answers there; the service gets it here', async () => {
    const call = a.invoke(HUB, 'd1', invocation({ payload: [1] }), () => true);
    expect(sentOnB).toEqual([expect.objectContaining({ deviceId: 'd1', methodName: 'reboot', payloadJson: '[1]' })]);
    expect(b.answer(HUB, 'd1', sentOnB[0]?.rid as string, 200, Buffer.from('{"ok":1}'))).toBe('answered');
    await expect(call).resolves.toEqual({ status: 200, payload: { ok: 1 } });
    expect(relayed).toEqual(['method reboot', 'end answered']);
    expect([a.pending, b.pending, vi.getTimerCount()]).toEqual([0, 0, 0]);
    // A followed the store while the call was in flight, and stopped after.
    expect(holdingA).toEqual([true, false]);
  });

  it('a forwarded call whose caller has gone is let go here; the process holding the device still ends it, ignored here', async () => {
    const gone = new AbortController();
    const call = a.invoke(HUB, 'd1', invocation(), () => true, gone.signal).catch((err: unknown) => err);
    expect([a.pending, b.pending]).toEqual([1, 1]);
    gone.abort();
    // A's slot, timer and store following released; B's call is B's, ended by the device's answer.
    expect([a.pending, b.pending, vi.getTimerCount(), holdingA]).toEqual([0, 1, 1, [true, false]]);
    expect(await call).toMatchObject({ status: 499 });
    expect(b.answer(HUB, 'd1', sentOnB[0]?.rid as string, 200, Buffer.from('{}'))).toBe('answered');
    expect(relayed).toEqual(['method reboot', 'end answered']);
    expect([a.pending, b.pending, vi.getTimerCount()]).toEqual([0, 0, 0]);
  });

  it('the process holding the device ends the call: not listening (404103), gone (504101), silent (504101)', async () => {
    subscribedOnB = false;
    await expect(a.invoke(HUB, 'd1', invocation(), () => true)).rejects.toMatchObject({
      status: 404,
      errorCode: 404103,
    });
    subscribedOnB = true;
    const gone = a.invoke(HUB, 'd1', invocation(), () => true).catch((err: unknown) => err);
    b.connectionClosed('b-connection');
    expect(await gone).toMatchObject({
      status: 504,
      message: 'The device disconnected before it answered the method.',
    });
    const silent = a
      .invoke(HUB, 'd1', invocation({ responseTimeoutInSeconds: 5 }), () => true)
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await silent).toMatchObject({ status: 504, errorCode: 504101, info: { timeout: '00:00:05' } });
    expect([a.pending, b.pending, vi.getTimerCount()]).toEqual([0, 0, 0]);
  });

  it('a call waiting for its device is forwarded when the device connects elsewhere, and sent once it listens', async () => {
    heldOnB = false;
    const call = a.invoke(HUB, 'd1', invocation({ connectTimeoutInSeconds: 60 }), () => false);
    await vi.advanceTimersByTimeAsync(10_000);
    // The device connects to B (A reads B's `connected` push) without listening to methods yet.
    heldOnB = true;
    subscribedOnB = false;
    a.deviceConnectedElsewhere(HUB, 'd1');
    expect(sentOnB).toEqual([]);
    subscribedOnB = true;
    b.deviceReady(HUB, 'd1');
    expect(b.answer(HUB, 'd1', sentOnB[0]?.rid as string, 204, Buffer.alloc(0))).toBe('answered');
    await expect(call).resolves.toEqual({ status: 204, payload: null });
  });

  it('does not forward a call for a device connected here without listening to methods (404103 here)', async () => {
    let heldOnA = true;
    a.attach({ holds: () => heldOnA, send: () => undefined });
    await expect(a.invoke(HUB, 'd1', invocation(), () => true)).rejects.toMatchObject({ errorCode: 404103 });
    expect(relayed).toEqual([]);
    // Not connected here: the registry's Connected is another process's connection.
    heldOnA = false;
    const call = a.invoke(HUB, 'd1', invocation(), () => true);
    expect(relayed).toEqual(['method reboot']);
    b.answer(HUB, 'd1', sentOnB[0]?.rid as string, 200, Buffer.alloc(0));
    await expect(call).resolves.toEqual({ status: 200, payload: null });
  });

  it('lets a call go when the registry cannot be read (a failing store): the service gets the error', async () => {
    const storeFault = new Error('SQLITE_BUSY: database is locked');
    await expect(
      a.invoke(HUB, 'd1', invocation({ connectTimeoutInSeconds: 60 }), () => {
        throw storeFault;
      }),
    ).rejects.toBe(storeFault);
    // Nothing held: no timer, the store no longer followed, the device's count of calls back to 0.
    expect([a.pending, vi.getTimerCount()]).toEqual([0, 0]);
    expect(holdingA).toEqual([true, false]);
    expect(relayed).toEqual([]);
  });

  it('times the call out here when no process holds the device (a stale Connected state)', async () => {
    heldOnB = false;
    const call = a.invoke(HUB, 'd1', invocation({ responseTimeoutInSeconds: 5 }), () => true).catch((e: unknown) => e);
    expect(b.pending).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000 + RELAY_GRACE_MS);
    expect(await call).toMatchObject({ status: 504, errorCode: 504101 });
    expect(vi.getTimerCount()).toBe(0);
  });
});

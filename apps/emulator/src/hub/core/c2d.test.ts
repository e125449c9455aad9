import { describe, expect, it } from 'vitest';
import {
  C2D_DEFAULT_TTL_MS,
  C2D_LOCK_TIMEOUT_MS,
  C2D_MAX_DELIVERY_COUNT,
  C2D_MAX_TTL_MS,
  C2dError,
  c2dHttpHeaders,
  c2dTopic,
  enqueue,
  feedbackOf,
  MAX_C2D_MESSAGE_BYTES,
  MAX_C2D_QUEUE_DEPTH,
  type OutgoingC2d,
  purge,
  receive,
  releaseConnection,
  settle,
} from './c2d.js';
import { MemoryHubStore } from './store.js';

const HUB = 'toaster-hub.azure-devices.net';
const T0 = Date.parse('2026-12-05T03:00:00.000Z');

function message(fields: Partial<OutgoingC2d> = {}): OutgoingC2d {
  return { body: Buffer.from('hello'), ...fields };
}

function refusal(fn: () => unknown): C2dError {
  try {
    fn();
  } catch (err) {
    if (err instanceof C2dError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('a device cloud-to-device queue', () => {
  it('delivers in order, each locked under a new token until completed', () => {
    const store = new MemoryHubStore();
    enqueue(store, HUB, 'd1', message({ messageId: 'a' }), T0);
    enqueue(store, HUB, 'd1', message({ messageId: 'b' }), T0);
    const first = receive(store, HUB, 'd1', {}, T0).message;
    const second = receive(store, HUB, 'd1', {}, T0).message;
    expect([first?.messageId, second?.messageId]).toEqual(['a', 'b']);
    expect(first?.lock?.token).not.toBe(second?.lock?.token);
    // Both Invisible: nothing more to receive.
    expect(receive(store, HUB, 'd1', {}, T0).message).toBeUndefined();
    const done = settle(store, HUB, 'd1', first?.lock?.token ?? '', 'complete', T0);
    expect(done.changes.map((c) => c.outcome)).toEqual(['completed']);
    expect(store.c2dMessages(HUB, 'd1').map((m) => m.messageId)).toEqual(['b']);
  });

  it('keeps queues apart per device (ids are case-sensitive)', () => {
    const store = new MemoryHubStore();
    enqueue(store, HUB, 'Dev', message({ messageId: 'upper' }), T0);
    expect(receive(store, HUB, 'dev', {}, T0).message).toBeUndefined();
    expect(receive(store, HUB, 'Dev', {}, T0).message?.messageId).toBe('upper');
  });

  it('refuses the 51st message with 403004 and keeps the 50', () => {
    const store = new MemoryHubStore();
    for (let i = 0; i < MAX_C2D_QUEUE_DEPTH; i++) enqueue(store, HUB, 'd1', message(), T0);
    const error = refusal(() => enqueue(store, HUB, 'd1', message(), T0));
    expect([error.status, error.code, error.errorCode]).toEqual([403, 'DeviceMaximumQueueDepthExceeded', 403004]);
    expect(store.c2dMessages(HUB, 'd1')).toHaveLength(MAX_C2D_QUEUE_DEPTH);
    // Locked (Invisible) messages count too; a completed one frees its place.
    const locked = receive(store, HUB, 'd1', {}, T0).message;
    refusal(() => enqueue(store, HUB, 'd1', message(), T0));
    settle(store, HUB, 'd1', locked?.lock?.token ?? '', 'complete', T0);
    expect(enqueue(store, HUB, 'd1', message(), T0).message.seq).toBe(MAX_C2D_QUEUE_DEPTH + 1);
  });

  it('refuses a message over 64 KB (body and properties) with 413001', () => {
    const store = new MemoryHubStore();
    enqueue(store, HUB, 'd1', message({ body: Buffer.alloc(MAX_C2D_MESSAGE_BYTES) }), T0);
    const error = refusal(() =>
      enqueue(
        store,
        HUB,
        'd1',
        message({ body: Buffer.alloc(MAX_C2D_MESSAGE_BYTES - 2), properties: { ab: 'c' } }),
        T0,
      ),
    );
    expect([error.status, error.code, error.errorCode]).toEqual([413, 'MessageTooLarge', 413001]);
    expect(error.message).toContain(`${MAX_C2D_MESSAGE_BYTES + 1} bytes`);
  });

  it('refuses properties and ids IoT Hub does not allow with 400004 naming them', () => {
    const store = new MemoryHubStore();
    const property = refusal(() => enqueue(store, HUB, 'd1', message({ properties: { 'my key': 'v' } }), T0));
    expect([property.status, property.errorCode]).toEqual([400, 400004]);
    expect(property.message).toContain('my key');
    const value = refusal(() => enqueue(store, HUB, 'd1', message({ properties: { k: 'caf\u00e9' } }), T0));
    expect(value.message).toContain('Application property k');
    const id = refusal(() => enqueue(store, HUB, 'd1', message({ messageId: 'x'.repeat(129) }), T0));
    expect(id.message).toContain('messageId');
    const newline = refusal(() => enqueue(store, HUB, 'd1', message({ correlationId: 'a\r\nb' }), T0));
    expect(newline.message).toContain('correlationId');
    expect(store.c2dMessages(HUB, 'd1')).toHaveLength(0);
  });

  it('expires messages (default TTL one hour, at most 48 hours) as dead-lettered', () => {
    const store = new MemoryHubStore();
    const plain = enqueue(store, HUB, 'd1', message({ messageId: 'plain' }), T0).message;
    expect(plain.expiryMs).toBe(T0 + C2D_DEFAULT_TTL_MS);
    const far = enqueue(store, HUB, 'd1', message({ expiryTimeUtc: new Date(T0 + 10 * C2D_MAX_TTL_MS) }), T0).message;
    expect(far.expiryMs).toBe(T0 + C2D_MAX_TTL_MS);
    const at = T0 + C2D_DEFAULT_TTL_MS;
    const { message: next, changes } = receive(store, HUB, 'd1', {}, at);
    expect(changes.map((c) => [c.outcome, c.message.messageId])).toEqual([
      ['expired', 'plain'],
      ['delivered', undefined],
    ]);
    expect(next?.seq).toBe(far.seq);
  });

  it('lets a timed lock lapse after a minute: Enqueued again, delivery count unchanged, old token lost', () => {
    const store = new MemoryHubStore();
    enqueue(store, HUB, 'd1', message(), T0);
    const first = receive(store, HUB, 'd1', {}, T0).message;
    expect(receive(store, HUB, 'd1', {}, T0 + C2D_LOCK_TIMEOUT_MS - 1).message).toBeUndefined();
    const again = receive(store, HUB, 'd1', {}, T0 + C2D_LOCK_TIMEOUT_MS);
    expect(again.changes.map((c) => c.outcome)).toEqual(['lock-lapsed', 'delivered']);
    expect(again.message?.deliveryCount).toBe(0);
    const lost = refusal(() =>
      settle(store, HUB, 'd1', first?.lock?.token ?? '', 'complete', T0 + C2D_LOCK_TIMEOUT_MS),
    );
    expect([lost.status, lost.code, lost.errorCode]).toEqual([412, 'DeviceMessageLockLost', 412002]);
    settle(store, HUB, 'd1', again.message?.lock?.token ?? '', 'complete', T0 + C2D_LOCK_TIMEOUT_MS);
    expect(store.c2dMessages(HUB, 'd1')).toHaveLength(0);
  });

  it('rejects (dead-lettered, gone) and abandons (Enqueued again, count + 1) until the max delivery count', () => {
    const store = new MemoryHubStore();
    enqueue(store, HUB, 'd1', message({ messageId: 'r' }), T0);
    const rejected = receive(store, HUB, 'd1', {}, T0).message;
    expect(settle(store, HUB, 'd1', rejected?.lock?.token ?? '', 'reject', T0).changes.map((c) => c.outcome)).toEqual([
      'rejected',
    ]);
    enqueue(store, HUB, 'd1', message({ messageId: 'a' }), T0);
    for (let count = 1; count < C2D_MAX_DELIVERY_COUNT; count++) {
      const delivered = receive(store, HUB, 'd1', {}, T0).message;
      const { changes } = settle(store, HUB, 'd1', delivered?.lock?.token ?? '', 'abandon', T0);
      expect(changes.map((c) => [c.outcome, c.message.deliveryCount])).toEqual([['abandoned', count]]);
    }
    const last = receive(store, HUB, 'd1', {}, T0).message;
    expect(last?.deliveryCount).toBe(C2D_MAX_DELIVERY_COUNT - 1);
    const { changes } = settle(store, HUB, 'd1', last?.lock?.token ?? '', 'abandon', T0);
    expect(changes.map((c) => c.outcome)).toEqual(['abandoned', 'dead-lettered']);
    expect(store.c2dMessages(HUB, 'd1')).toHaveLength(0);
  });

  it('puts back the messages locked to a connection that closed, and no other', () => {
    const store = new MemoryHubStore();
    enqueue(store, HUB, 'd1', message({ messageId: 'mqtt' }), T0);
    enqueue(store, HUB, 'd1', message({ messageId: 'https' }), T0);
    const onConnection = receive(store, HUB, 'd1', { connection: 'c1' }, T0).message;
    receive(store, HUB, 'd1', {}, T0);
    // A connection lock never lapses by time.
    expect(
      receive(store, HUB, 'd1', {}, T0 + 10 * C2D_LOCK_TIMEOUT_MS).changes.map((c) => c.message.messageId),
    ).toEqual(['https', 'https']);
    expect(releaseConnection(store, 'c2')).toEqual([]);
    const released = releaseConnection(store, 'c1');
    expect(released.map((c) => [c.outcome, c.message.messageId, c.message.deliveryCount])).toEqual([
      ['released', 'mqtt', 0],
    ]);
    refusal(() => settle(store, HUB, 'd1', onConnection?.lock?.token ?? '', 'complete', T0));
    expect(receive(store, HUB, 'd1', { connection: 'c3' }, T0).message?.messageId).toBe('mqtt');
    // With no connection named: every connection's locks (a restart).
    expect(releaseConnection(store, undefined).map((c) => c.message.messageId)).toEqual(['mqtt']);
  });

  it('purges a device queue', () => {
    const store = new MemoryHubStore();
    enqueue(store, HUB, 'd1', message(), T0);
    receive(store, HUB, 'd1', {}, T0);
    enqueue(store, HUB, 'd1', message(), T0);
    expect(purge(store, HUB, 'd1').map((c) => c.outcome)).toEqual(['purged', 'purged']);
    expect(store.c2dMessages(HUB, 'd1')).toEqual([]);
  });
});

describe('the wire forms', () => {
  const store = new MemoryHubStore();
  enqueue(
    store,
    HUB,
    'dev-1',
    message({
      messageId: 'm 1',
      correlationId: 'c/1',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      ack: 'full',
      expiryTimeUtc: new Date(T0 + 60_000),
      properties: { color: 'red', 'a&b': '1%2' },
    }),
    T0,
  );
  const queued = receive(store, HUB, 'dev-1', {}, T0).message;
  if (!queued) throw new Error('nothing received');

  it("MQTT topic: IoT Hub's property bag, URL-encoded, system properties first", () => {
    expect(c2dTopic(queued)).toBe(
      'devices/dev-1/messages/devicebound/%24.mid=m%201&%24.to=%2Fdevices%2Fdev-1%2Fmessages%2Fdevicebound' +
        '&%24.exp=2026-12-05T03%3A01%3A00.000Z&%24.cid=c%2F1&%24.ct=application%2Fjson&%24.ce=utf-8&iothub-ack=full' +
        '&color=red&a%26b=1%252',
    );
  });

  it('HTTPS headers: the lock token as a quoted ETag, iothub-* headers', () => {
    expect(c2dHttpHeaders(queued)).toEqual({
      ETag: `"${queued.lock?.token}"`,
      'iothub-to': '/devices/dev-1/messages/devicebound',
      'iothub-sequencenumber': '1',
      'iothub-enqueuedtime': '2026-12-05T03:00:00.000Z',
      'iothub-expiry': '2026-12-05T03:01:00.000Z',
      'iothub-deliverycount': '0',
      'iothub-ack': 'full',
      'iothub-messageid': 'm 1',
      'iothub-correlationid': 'c/1',
      'iothub-contenttype': 'application/json',
      'iothub-contentencoding': 'utf-8',
      'iothub-app-color': 'red',
      'iothub-app-a&b': '1%2',
    });
  });
});

describe('feedback (iothub-ack)', () => {
  it('owes a record for the outcomes its ack asks for', () => {
    const store = new MemoryHubStore();
    const change = (ack: OutgoingC2d['ack'], outcome: 'completed' | 'rejected' | 'expired' | 'purged') => ({
      outcome,
      message: { ...enqueue(store, HUB, 'd1', message({ messageId: 'm', ...(ack ? { ack } : {}) }), T0).message },
    });
    const code = (ack: OutgoingC2d['ack'], outcome: 'completed' | 'rejected' | 'expired' | 'purged') =>
      feedbackOf(change(ack, outcome), 'gen', T0)?.statusCode;
    expect(code('full', 'completed')).toBe('Success');
    expect(code('positive', 'completed')).toBe('Success');
    expect(code('negative', 'completed')).toBeUndefined();
    expect(code(undefined, 'completed')).toBeUndefined();
    expect(code('none', 'rejected')).toBeUndefined();
    expect(code('positive', 'rejected')).toBeUndefined();
    expect(code('negative', 'rejected')).toBe('Rejected');
    expect(code('full', 'expired')).toBe('Expired');
    expect(code('negative', 'purged')).toBe('Purged');
    expect(feedbackOf(change('full', 'completed'), 'gen', T0)).toEqual({
      originalMessageId: 'm',
      enqueuedTimeUtc: '2026-12-05T03:00:00.000Z',
      statusCode: 'Success',
      description: 'Success',
      deviceId: 'd1',
      deviceGenerationId: 'gen',
    });
  });
});

import { describe, expect, it } from 'vitest';
import type { LinkedHub } from '../model.js';
import { candidateHubs } from './candidates.js';
import { pickGeoLatency } from './geo-latency.js';
import { pickHashed } from './hashed.js';
import { pickStatic } from './static.js';

const attestation = { type: 'symmetricKey' as const };
const linked: LinkedHub[] = [
  { hostName: 'a.net', allocationWeight: 1, applyAllocationPolicy: true, latencyMs: 40 },
  { hostName: 'b.net', allocationWeight: 5, applyAllocationPolicy: true, latencyMs: 10 },
  { hostName: 'c.net', allocationWeight: 1, applyAllocationPolicy: false, latencyMs: 1 },
];

describe('candidateHubs', () => {
  it('takes the enrollment hubs when set (even a hub outside allocation), else the allocating linked hubs', () => {
    expect(
      candidateHubs({ enrollmentGroupId: 'g', attestation, iotHubs: ['C.net'] }, linked).map((h) => h.hostName),
    ).toEqual(['c.net']);
    expect(candidateHubs({ enrollmentGroupId: 'g', attestation }, linked).map((h) => h.hostName)).toEqual([
      'a.net',
      'b.net',
    ]);
    expect(candidateHubs({ enrollmentGroupId: 'g', attestation, iotHubs: [] }, linked).map((h) => h.hostName)).toEqual([
      'a.net',
      'b.net',
    ]);
  });
});

describe('pickStatic', () => {
  it('needs exactly one hub, from iotHubs or the legacy iotHubHostName', () => {
    expect(pickStatic({ registrationId: 'd', attestation, iotHubs: ['a.net'] })).toEqual({ hub: 'a.net' });
    expect(pickStatic({ registrationId: 'd', attestation, iotHubHostName: 'b.net' })).toEqual({ hub: 'b.net' });
    expect(pickStatic({ registrationId: 'd', attestation })).toEqual({
      problem: 'the static enrollment names no IoT hub',
    });
    expect(pickStatic({ registrationId: 'd', attestation, iotHubs: ['a.net', 'b.net'] })).toEqual({
      problem: 'the static enrollment names 2 IoT hubs (a.net, b.net); it must name exactly one',
    });
  });
});

describe('pickGeoLatency', () => {
  it('picks the lowest emulated latency and breaks ties with the weighted hash', () => {
    expect(pickGeoLatency('dev-1', linked.slice(0, 2))).toBe('b.net');
    const tied = linked.slice(0, 2).map((hub) => ({ ...hub, latencyMs: 5 }));
    expect(pickGeoLatency('dev-1', tied)).toBe(pickHashed('dev-1', tied));
    const unknown = linked.slice(0, 2).map(({ latencyMs: _latency, ...hub }) => hub);
    expect(pickGeoLatency('dev-7', unknown)).toBe(pickHashed('dev-7', unknown));
  });
});

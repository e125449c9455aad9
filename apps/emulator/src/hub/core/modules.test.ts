import { describe, expect, it } from 'vitest';
import { isValidModuleId, moduleKey, splitIdentityKey } from './modules.js';

describe('module ids', () => {
  it("takes IoT Hub's characters up to 128, without the MQTT wildcards + and #", () => {
    expect(isValidModuleId("Sensor-1.a%_*?!(),:=@$'")).toBe(true);
    expect(isValidModuleId('$edgeAgent')).toBe(true);
    expect(isValidModuleId('x'.repeat(128))).toBe(true);
    for (const bad of ['', 'x'.repeat(129), 'a/b', 'a b', 'a+b', 'a#b', 'é']) expect(isValidModuleId(bad)).toBe(false);
  });

  it("names a module's connection {deviceId}/{moduleId}, which no device id can be", () => {
    expect(moduleKey('d1', 'm1')).toBe('d1/m1');
    expect(splitIdentityKey('d1/m1')).toEqual({ deviceId: 'd1', moduleId: 'm1' });
    expect(splitIdentityKey('d1')).toEqual({ deviceId: 'd1' });
  });
});

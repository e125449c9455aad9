import deviceHttp from 'azure-iot-device-http';
import deviceMqtt from 'azure-iot-device-mqtt';
import provisioningAmqp from 'azure-iot-provisioning-device-amqp';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import { describe, expect, it } from 'vitest';
import { hasMethod, type TransportClass, transportClassOf, transportKind } from './transport-kind.js';

describe('transport classes, as the SDK packages export them', () => {
  it('are told by class name; a subclass is its base', () => {
    expect(transportKind(provisioningMqtt.MqttWs)).toBe('MqttWs');
    expect(transportKind(provisioningAmqp.AmqpWs)).toBe('AmqpWs');
    expect(transportKind(deviceMqtt.Mqtt)).toBe('Mqtt');
    class Mine extends deviceMqtt.MqttWs {}
    expect(transportKind(Mine)).toBe('MqttWs');
    expect(transportKind(class Other {})).toBeUndefined();
  });

  it('device transports send events, provisioning ones make registration requests', () => {
    expect(hasMethod(deviceMqtt.Mqtt, 'sendEvent')).toBe(true);
    expect(hasMethod(provisioningMqtt.Mqtt, 'sendEvent')).toBe(false);
    expect(hasMethod(provisioningMqtt.Mqtt, 'registrationRequest')).toBe(true);
  });

  it("azure-iot-device-http's Http is the class at run time, a namespace holding it in its typings: both are taken", () => {
    const atRunTime = deviceHttp.Http as unknown as TransportClass;
    expect(transportClassOf(atRunTime)).toBe(atRunTime);
    expect(transportClassOf({ Http: atRunTime })).toBe(atRunTime);
    expect(transportKind(transportClassOf(deviceHttp.Http))).toBe('Http');
  });
});

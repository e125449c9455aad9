// The SDK's MQTT transports (TLS and WebSockets) and their base; see modules.ts.
import mqttBaseModule from 'azure-iot-mqtt-base';
import mqttTransportModule from 'azure-iot-provisioning-device-mqtt';
import { disableMqttNumberCache } from './mqtt-packet.js';

export const { Mqtt, MqttWs } = mqttTransportModule;
export const { MqttBase } = mqttBaseModule;

disableMqttNumberCache(['azure-iot-mqtt-base']);

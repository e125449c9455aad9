// The Azure IoT device SDK packages are CommonJS: Node's ESM loader only guarantees their
// default export, so they are imported once here and destructured.
import amqpBaseModule from 'azure-iot-amqp-base';
import httpBaseModule from 'azure-iot-http-base';
import mqttBaseModule from 'azure-iot-mqtt-base';
import provisioningModule from 'azure-iot-provisioning-device';
import amqpTransportModule from 'azure-iot-provisioning-device-amqp';
import httpTransportModule from 'azure-iot-provisioning-device-http';
import mqttTransportModule from 'azure-iot-provisioning-device-mqtt';
import symmetricKeyModule from 'azure-iot-security-symmetric-key';
import x509Module from 'azure-iot-security-x509';

export const { ProvisioningDeviceClient, ProvisioningDeviceConstants } = provisioningModule;
export const { Mqtt, MqttWs } = mqttTransportModule;
export const { Amqp, AmqpWs } = amqpTransportModule;
export const { Amqp: AmqpBase } = amqpBaseModule;
export const { Http } = httpTransportModule;
export const { MqttBase } = mqttBaseModule;
export const { Http: HttpBase } = httpBaseModule;
export const { SymmetricKeySecurityClient } = symmetricKeyModule;
export const { X509Security } = x509Module;

/** The version the SDK reports in its User-Agent (`azure-iot-provisioning-device/1.9.1`). */
export function sdkVersion(): string {
  const agent = ProvisioningDeviceConstants.userAgent;
  return agent.slice(agent.lastIndexOf('/') + 1);
}

/** The DPS api-version the SDK sends (`2019-03-31`). */
export function sdkApiVersion(): string {
  return ProvisioningDeviceConstants.apiVersion;
}

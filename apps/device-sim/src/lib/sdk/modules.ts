// The Azure IoT device SDK packages are CommonJS: Node's ESM loader only guarantees their
// default export, so they are imported once here and destructured. This file holds what every
// registration needs (the client and its security providers); each transport's packages are in
// their own file (mqtt.ts, amqp.ts, http.ts), loaded only when a device uses that transport: a
// fleet thread that imported all three spent about 55 ms more CPU at start (rhea, the HTTP base).
import provisioningModule from 'azure-iot-provisioning-device';
import symmetricKeyModule from 'azure-iot-security-symmetric-key';
import x509Module from 'azure-iot-security-x509';

export const { ProvisioningDeviceClient, ProvisioningDeviceConstants } = provisioningModule;
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

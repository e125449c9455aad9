import type { AllocationRequest } from '@dpskit/contracts';
// The contracts' x509 entry, not their main one: the main entry loads zod and builds every schema, which a
// Functions app importing @dpskit/allocator (this module is in its index) paid at each cold start (issue #13).
import { distinguishedNameAttribute } from '@dpskit/contracts/x509';
import { type AllocationDecision, accept, reject } from './policy.js';

/** The rejection messages of the certificate policy. */
export const CertificateMessage = {
  NotX509: 'The device did not attest with an X.509 certificate.',
  NoUnit: 'The device certificate has no OU (organizational unit) naming its device type.',
  noHub: (unit: string) => `No linked IoT hub serves device type "${unit}".`,
} as const;

/**
 * The tutorial's toaster/heat-pump split decided by a certificate property, as the custom
 * allocation docs suggest ("examine the certificate a device is using during provisioning and
 * assign the device to an IoT hub based on a certificate property"): the device certificate's
 * organizational unit (`OU=toasters`, `OU=heatpumps`) names the device type, and the device goes
 * to the linked hub whose host name contains it (`contoso-toasters-hub-1098.azure-devices.net`),
 * compared case-insensitively. The type is also set as the twin tag `deviceType`. Devices that did
 * not attest with a certificate, have no OU, or whose type no linked hub serves are refused (400).
 */
export function certificatePolicy(request: AllocationRequest): AllocationDecision {
  const subject = request.deviceRuntimeContext.x509?.certificateInfo?.subjectName;
  if (subject === undefined) return reject(CertificateMessage.NotX509);
  const unit = distinguishedNameAttribute(subject, 'OU');
  if (!unit) return reject(CertificateMessage.NoUnit);
  const hub = request.linkedHubs.find((name) => name.toLowerCase().includes(unit.toLowerCase()));
  if (!hub) return reject(CertificateMessage.noHub(unit));
  return accept({ iotHubHostName: hub, initialTwin: { tags: { deviceType: unit } } });
}

import type { EnrollmentGroup, IndividualEnrollment } from '@dpskit/contracts';
import type { LinkedHub } from '../model.js';

/**
 * The hubs a device of this enrollment may be assigned to: the enrollment's `iotHubs` when set,
 * otherwise every linked hub that takes part in allocation. DPS documents that
 * `applyAllocationPolicy: false` keeps a hub out of allocation unless an enrollment names it.
 */
export function candidateHubs(
  enrollment: EnrollmentGroup | IndividualEnrollment,
  linkedHubs: readonly LinkedHub[],
): LinkedHub[] {
  if (enrollment.iotHubs && enrollment.iotHubs.length > 0) {
    return enrollment.iotHubs.map(
      (name) =>
        linkedHubs.find((hub) => hub.hostName.toLowerCase() === name.toLowerCase()) ?? {
          hostName: name,
          allocationWeight: 1,
          applyAllocationPolicy: true,
        },
    );
  }
  return linkedHubs.filter((hub) => hub.applyAllocationPolicy);
}

import type { EnrollmentGroup, IndividualEnrollment } from '@dpskit/contracts';

/**
 * `static`: the enrollment names exactly one hub, in `iotHubs` or in the legacy `iotHubHostName`.
 * DPS accepts static enrollments without hubs at creation and fails at registration; so does the
 * emulator. Returns the hub or a sentence saying why there is none.
 */
export function pickStatic(enrollment: EnrollmentGroup | IndividualEnrollment): { hub: string } | { problem: string } {
  const hubs =
    enrollment.iotHubs && enrollment.iotHubs.length > 0
      ? enrollment.iotHubs
      : enrollment.iotHubHostName
        ? [enrollment.iotHubHostName]
        : [];
  const [only] = hubs;
  if (hubs.length === 1 && only) return { hub: only };
  return {
    problem:
      hubs.length === 0
        ? 'the static enrollment names no IoT hub'
        : `the static enrollment names ${hubs.length} IoT hubs (${hubs.join(', ')}); it must name exactly one`,
  };
}

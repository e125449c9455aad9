import type { AllocationRequest } from '@dpskit/contracts';
import { type AllocationDecision, accept, reject } from './policy.js';

/** The rejection messages of the tutorial's C# function, verbatim. */
export const TutorialMessage = {
  NoRegistrationId: 'Registration ID not provided for the device.',
  NoLinkedHubs: 'No hub group defined for the enrollment.',
  Unrecognized: 'Unrecognized device registration.',
} as const;

/**
 * The policy of Microsoft's "custom allocation policies" tutorial (2022 revision): toasters, whose
 * registration id contains `contoso-toaster`, go to the first linked hub; every other device is
 * refused. The substring test is case-sensitive like C#'s `string.Contains`.
 */
export function tutorialPolicy(request: AllocationRequest): AllocationDecision {
  const registrationId = request.deviceRuntimeContext.registrationId;
  if (registrationId === '') return reject(TutorialMessage.NoRegistrationId);
  const firstHub = request.linkedHubs[0];
  if (firstHub === undefined) return reject(TutorialMessage.NoLinkedHubs);
  if (registrationId.includes('contoso-toaster')) return accept({ iotHubHostName: firstHub });
  return reject(TutorialMessage.Unrecognized);
}

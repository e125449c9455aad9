import type { EnrollmentGroup, IndividualEnrollment, InitialTwin } from '@dpskit/contracts';
import { displayWebhookUrl } from './redact.js';

/** What the page shows about the instance (no secrets: the service connection string is not here). */
export interface WebViewOverview {
  idScope: string;
  linkedHubs: { hostName: string; allocationWeight: number; applyAllocationPolicy: boolean }[];
  endpoints: { mqtt: string; https: string | null };
  /** How many attempts the store keeps. */
  attemptHistory: number;
}

/**
 * An enrollment as the web view shows it. Built field by field (an allow-list): attestation
 * keys, certificates and unknown fields are never copied, and the webhook URL is masked.
 */
export interface EnrollmentView {
  kind: 'group' | 'individual';
  id: string;
  attestationType: string;
  /** The enrollment's policy; absent: the instance default applies. */
  allocationPolicy?: string;
  webhookUrl?: string;
  webhookApiVersion?: string;
  /** The hubs the enrollment may use; absent: every linked hub. */
  iotHubs?: string[];
  /** `static` allocation's single hub. */
  iotHubHostName?: string;
  initialTwin?: InitialTwin;
  provisioningStatus: 'enabled' | 'disabled';
  reprovisionPolicy?: { updateHubAssignment: boolean; migrateDeviceData: boolean };
  /** Individual enrollments: the device id they assign. */
  deviceId?: string;
  iotEdge: boolean;
  /** Registration records of this enrollment. */
  registrations: number;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
}

export function enrollmentView(
  kind: 'group' | 'individual',
  record: EnrollmentGroup | IndividualEnrollment,
  registrations: number,
): EnrollmentView {
  const individual = kind === 'individual' ? (record as IndividualEnrollment) : undefined;
  const id = individual ? individual.registrationId : (record as EnrollmentGroup).enrollmentGroupId;
  const view: EnrollmentView = {
    kind,
    id,
    attestationType: record.attestation.type,
    provisioningStatus: record.provisioningStatus ?? 'enabled',
    iotEdge: record.capabilities?.iotEdge === true,
    registrations,
  };
  if (record.allocationPolicy) view.allocationPolicy = record.allocationPolicy;
  const definition = record.customAllocationDefinition;
  if (definition) {
    view.webhookUrl = displayWebhookUrl(definition.webhookUrl);
    view.webhookApiVersion = definition.apiVersion;
  }
  if (record.iotHubs?.length) view.iotHubs = [...record.iotHubs];
  if (record.iotHubHostName) view.iotHubHostName = record.iotHubHostName;
  if (record.initialTwin) view.initialTwin = record.initialTwin;
  if (record.reprovisionPolicy) {
    view.reprovisionPolicy = {
      updateHubAssignment: record.reprovisionPolicy.updateHubAssignment,
      migrateDeviceData: record.reprovisionPolicy.migrateDeviceData,
    };
  }
  if (individual?.deviceId) view.deviceId = individual.deviceId;
  if (record.createdDateTimeUtc) view.createdDateTimeUtc = record.createdDateTimeUtc;
  if (record.lastUpdatedDateTimeUtc) view.lastUpdatedDateTimeUtc = record.lastUpdatedDateTimeUtc;
  return view;
}

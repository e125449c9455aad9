import { type AllocationRequest, parseAllocationRequestJson } from '@dpskit/contracts';

/**
 * The two request bodies of the tutorial's Logs pane (MicrosoftDocs/azure-docs
 * tutorial-custom-allocation-policies.md: the 2022 log with apiVersion 2021-10-01 and the 2020 log
 * with 2019-03-31), with dpskit's registration ids and the toasters hub as the only linked hub.
 */
export const TOASTER_BODY =
  '{"enrollmentGroup":{"enrollmentGroupId":"contoso-custom-allocated-devices","attestation":{"type":"symmetricKey"},"capabilities":{"iotEdge":false},"etag":"\\"0000f176-0000-0700-0000-62eaad1e0000\\"","provisioningStatus":"enabled","reprovisionPolicy":{"updateHubAssignment":true,"migrateDeviceData":true},"createdDateTimeUtc":"2022-08-03T17:15:10.8464255Z","lastUpdatedDateTimeUtc":"2022-08-03T17:15:10.8464255Z","allocationPolicy":"custom","iotHubs":["contoso-toasters-hub-1098.azure-devices.net"],"customAllocationDefinition":{"webhookUrl":"https://contoso-function-app-1098.azurewebsites.net/api/HttpTrigger1?****","apiVersion":"2021-10-01"}},"deviceRuntimeContext":{"registrationId":"contoso-toaster-007","symmetricKey":{},"payload":{"MyDeviceFirmwareVersion":"12.0.2.5","MyDeviceProvisioningVersion":"1.0.0.0"}},"linkedHubs":["contoso-toasters-hub-1098.azure-devices.net"]}';

export const HEATPUMP_BODY =
  '{"enrollmentGroup":{"enrollmentGroupId":"contoso-custom-allocated-devices","attestation":{"type":"symmetricKey"},"capabilities":{"iotEdge":false},"etag":"\\"e8002126-0000-0100-0000-5f6b2a570000\\"","provisioningStatus":"enabled","reprovisionPolicy":{"updateHubAssignment":true,"migrateDeviceData":true},"createdDateTimeUtc":"2020-09-23T10:58:31.62286Z","lastUpdatedDateTimeUtc":"2020-09-23T10:58:31.62286Z","allocationPolicy":"custom","iotHubs":["contoso-toasters-hub-1098.azure-devices.net"],"customAllocationDefinition":{"webhookUrl":"https://contoso-function-app.azurewebsites.net/api/HttpTrigger1?****","apiVersion":"2019-03-31"}},"deviceRuntimeContext":{"registrationId":"contoso-heatpump-088","symmetricKey":{},"payload":{"MyDeviceFirmwareVersion":"12.0.2.5","MyDeviceProvisioningVersion":"1.0.0.0"}},"linkedHubs":["contoso-toasters-hub-1098.azure-devices.net"]}';

export const TOASTERS_HUB = 'contoso-toasters-hub-1098.azure-devices.net';

/** A parsed copy of a fixture body, optionally changed, for policy tests. */
export function requestFrom(body: string, change?: (request: AllocationRequest) => void): AllocationRequest {
  const parsed = parseAllocationRequestJson(body);
  if (!parsed.ok) throw parsed.error;
  change?.(parsed.value);
  return parsed.value;
}

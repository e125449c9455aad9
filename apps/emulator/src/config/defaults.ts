import type { EmulatorConfigInput } from './schema.js';

/** The enrollment group key of Microsoft's custom allocation tutorial. */
export const TUTORIAL_GROUP_KEY =
  'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
export const TUTORIAL_ID_SCOPE = '0ne00000A0A';
export const TUTORIAL_GROUP_ID = 'contoso-custom-allocated-devices';
export const TUTORIAL_HUBS = [
  'contoso-toasters-hub-1098.azure-devices.net',
  'contoso-heatpumps-hub-1098.azure-devices.net',
] as const;

/**
 * What `dps-emulator start` serves without a config file: the tutorial's ID scope, its two hubs
 * and its enrollment group with the tutorial's group key. The group uses `hashed` over both hubs so
 * that devices provision without anything else running; with a webhook URL it uses `custom` and,
 * as the tutorial's enrollment group does, selects the toasters hub only (so `linkedHubs` in the
 * webhook request is that one hub, and the heat pump is rejected by the tutorial's function).
 */
export function tutorialConfig(options: { webhookUrl?: string } = {}): EmulatorConfigInput {
  return {
    idScope: TUTORIAL_ID_SCOPE,
    iotHubs: TUTORIAL_HUBS.map((hostName) => ({ hostName })),
    enrollmentGroups: [
      {
        enrollmentGroupId: TUTORIAL_GROUP_ID,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: TUTORIAL_GROUP_KEY } },
        reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
        ...(options.webhookUrl
          ? {
              iotHubs: [TUTORIAL_HUBS[0]],
              allocationPolicy: 'custom',
              customAllocationDefinition: { webhookUrl: options.webhookUrl, apiVersion: '2021-10-01' },
            }
          : { iotHubs: [...TUTORIAL_HUBS], allocationPolicy: 'hashed' }),
      },
    ],
  };
}

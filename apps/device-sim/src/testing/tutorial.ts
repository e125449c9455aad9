/** The tutorial's IoT hub, where its custom allocation function puts the toasters. */
export const TUTORIAL_HUB = 'contoso-toasters-hub-1098.azure-devices.net';

/**
 * What the tutorial's device sample prints when contoso-toaster-007 is assigned: the text
 * `device-sim register` reproduces line for line.
 */
export const TUTORIAL_TOASTER_OUTPUT = [
  'Provisioning API Version: 1.9.1',
  '',
  'Registering Device',
  '',
  'Provisioning Status: PROV_DEVICE_REG_STATUS_CONNECTED',
  'Provisioning Status: PROV_DEVICE_REG_STATUS_ASSIGNING',
  '',
  `Registration Information received from service: ${TUTORIAL_HUB}, deviceId: contoso-toaster-007`,
  '',
].join('\n');

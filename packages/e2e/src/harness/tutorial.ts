/** The values of the custom allocation tutorial, as dpskit's walk-through uses them. */
export const TUTORIAL = {
  idScope: '0ne00000A0A',
  enrollmentGroupId: 'contoso-custom-allocated-devices',
  groupKey: 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==',
  toasterHub: 'contoso-toasters-hub-1098.azure-devices.net',
  toaster: 'contoso-toaster-007',
  heatpump: 'contoso-heatpump-088',
  payload: { MyDeviceFirmwareVersion: '12.0.2.5', MyDeviceProvisioningVersion: '1.0.0.0' },
  /** The enrollment group's initial twin: what a toaster finds on its hub after provisioning. */
  initialTwin: {
    tags: { deviceType: 'toaster', site: 'contoso-redmond' },
    properties: { desired: { toastLevel: 3, telemetryIntervalSeconds: 10 } },
  },
} as const;

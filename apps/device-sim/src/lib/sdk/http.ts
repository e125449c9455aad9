// The SDK's HTTP transport and its base; see modules.ts.
import httpBaseModule from 'azure-iot-http-base';
import httpTransportModule from 'azure-iot-provisioning-device-http';

export const { Http } = httpTransportModule;
export const { Http: HttpBase } = httpBaseModule;

import type { Amqp } from '../sdk/amqp.js';
import type { Http } from '../sdk/http.js';
import type { Mqtt } from '../sdk/mqtt.js';

type SdkTransport = InstanceType<typeof Mqtt> | InstanceType<typeof Amqp> | InstanceType<typeof Http>;

export interface DeviceTransport {
  /** The SDK transport object to hand to `ProvisioningDeviceClient.create`. */
  sdkTransport: SdkTransport;
  /** The `provisioningHost` to hand to `ProvisioningDeviceClient.create` with it. */
  sdkHost: string;
  /**
   * Stops the registration now: pending requests fail with `OperationCancelledError`, later ones are
   * refused, and connections are closed. Resolves when the transport has let go.
   */
  abort(): Promise<void>;
  /** Releases what the transport holds once the registration is over. */
  dispose(): void;
}

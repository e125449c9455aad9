// The SDK's AMQP transports (TLS and WebSockets) and their base; see modules.ts.
import amqpBaseModule from 'azure-iot-amqp-base';
import amqpTransportModule from 'azure-iot-provisioning-device-amqp';

export const { Amqp, AmqpWs } = amqpTransportModule;
export const { Amqp: AmqpBase } = amqpBaseModule;

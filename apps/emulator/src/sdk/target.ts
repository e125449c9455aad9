// Where the SDK helpers send a client: an emulator in this process, or one started by the CLI in
// another (its --ready-file and the text of its CA). Both are reduced to the endpoints a client
// dials and the CA it must trust.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** One listener of the emulator, as `Emulator.endpoints` and the CLI's ready file give it. */
export interface EmulatorTargetEndpoint {
  readonly host?: string;
  readonly port: number;
  /** `localhost:PORT` for MQTT and AMQP; the host name alone for HTTPS and WebSockets. */
  readonly provisioningHost: string;
}

type MaybeEndpoint = EmulatorTargetEndpoint | null | undefined;

/**
 * An emulator the SDK clients are pointed at:
 * - a running `Emulator` of this process (`createEmulator`), or anything with its `endpoints` and `caCertPem`;
 * - one started by `dps-emulator start --ready-file`: `readyFileTarget(path)`, or the ready file's
 *   `mqtt`/`https`/`amqp`/`webSockets` and the CA's text as `ca`.
 */
export type EmulatorTarget =
  | {
      readonly endpoints: {
        readonly mqtt?: MaybeEndpoint;
        readonly https?: MaybeEndpoint;
        readonly amqp?: MaybeEndpoint;
        readonly webSockets?: MaybeEndpoint;
      };
      readonly caCertPem: string;
    }
  | {
      readonly mqtt?: MaybeEndpoint;
      readonly https?: MaybeEndpoint;
      readonly amqp?: MaybeEndpoint;
      readonly webSockets?: MaybeEndpoint;
      readonly ca: string | Uint8Array;
    };

/** A target reduced to what the helpers read; an absent listener is undefined. */
export interface ResolvedTarget {
  readonly mqtt?: EmulatorTargetEndpoint;
  readonly https?: EmulatorTargetEndpoint & { readonly host: string };
  readonly amqp?: EmulatorTargetEndpoint;
  readonly webSockets?: EmulatorTargetEndpoint;
  readonly ca: string;
}

export function resolveTarget(target: EmulatorTarget): ResolvedTarget {
  const endpoints = 'endpoints' in target ? target.endpoints : target;
  const ca = 'endpoints' in target ? target.caCertPem : target.ca;
  const https = endpoints.https ?? undefined;
  return {
    mqtt: endpoints.mqtt ?? undefined,
    https: https ? { ...https, host: https.host ?? '127.0.0.1' } : undefined,
    amqp: endpoints.amqp ?? undefined,
    webSockets: endpoints.webSockets ?? undefined,
    ca: typeof ca === 'string' ? ca : Buffer.from(ca).toString('utf8'),
  };
}

/** The flag or option that turned a listener off, for the error saying a client needs it. */
const TURNED_OFF_BY = {
  mqtt: 'the target names no MQTT endpoint',
  https: 'the emulator runs without HTTPS (httpsPort false or --no-https)',
  amqp: 'the emulator runs without AMQP (amqpPort false or --no-amqp)',
  webSockets: 'the emulator runs without HTTPS, so without WebSockets (httpsPort false or --no-https)',
} as const;

/** The listener `client` needs, or an error naming the client and why the listener is missing. */
export function requireEndpoint<K extends keyof typeof TURNED_OFF_BY>(
  target: ResolvedTarget,
  listener: K,
  client: string,
): NonNullable<ResolvedTarget[K]> {
  const endpoint = target[listener];
  if (!endpoint) throw missingEndpointError(listener, client);
  return endpoint as NonNullable<ResolvedTarget[K]>;
}

/** The error saying `client` needs `listener`, which the target lacks. */
export function missingEndpointError(listener: keyof typeof TURNED_OFF_BY, client: string): Error {
  return new Error(`@dpskit/emulator/sdk: ${client} needs ${listener}: ${TURNED_OFF_BY[listener]}`);
}

const endpointSchema = z.object({
  host: z.string().optional(),
  port: z.number().int().min(1).max(65535),
  provisioningHost: z.string().min(1),
});
const readyFileSchema = z.object({
  mqtt: endpointSchema,
  https: endpointSchema.nullable(),
  amqp: endpointSchema.nullable().optional(),
  webSockets: endpointSchema.nullable().optional(),
  caCertPath: z.string().min(1),
});

/**
 * The target of an emulator started by `dps-emulator start --ready-file <path>`: its endpoints and
 * the CA (read from the `caCertPath` the file names). Throws naming the file and the field when it
 * is not such a file.
 */
export function readyFileTarget(path: string): EmulatorTarget {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`@dpskit/emulator/sdk: cannot read the ready file ${path}: ${(err as Error).message}`);
  }
  const parsed = readyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `@dpskit/emulator/sdk: ${path} is not a dps-emulator ready file: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  const { caCertPath, ...endpoints } = parsed.data;
  return { ...endpoints, ca: readFileSync(caCertPath, 'utf8') };
}

/** The DPS MQTT topic grammar as the device SDKs speak it (pure; no broker). */

export const RESPONSE_FILTER = '$dps/registrations/res/#';
export const REQUEST_PREFIX = '$dps/registrations/';
const RESPONSE_PREFIX = '$dps/registrations/res/';
const REGISTER_PATH = '$dps/registrations/PUT/iotdps-register/';
const OPERATION_STATUS_PATH = '$dps/registrations/GET/iotdps-get-operationstatus/';

export type DeviceRequestTopic =
  | { kind: 'register'; rid: string }
  | { kind: 'operation-status'; rid: string; operationId: string | null }
  | { kind: 'unknown'; rid: string }
  | { kind: 'no-rid' };

/**
 * The longest request id (`$rid`, percent-decoded, in UTF-16 units) a device's request may carry,
 * on DPS and on the emulated hubs. The SDKs send short ones (a counter, a UUID); the answer echoes
 * it, percent-encoded, in its topic, and an MQTT topic is at most 65,535 bytes: a `$rid` of up to a
 * 256 KiB packet's worth would not fit. Neither service documents a bound: 1024 encodes to at most
 * 9 KiB (a 3-byte UTF-8 character is 9 bytes encoded).
 */
export const MAX_REQUEST_ID_LENGTH = 1024;

const REGISTER_RID = `${REGISTER_PATH}?$rid=`;
const OPERATION_STATUS_RID = `${OPERATION_STATUS_PATH}?$rid=`;
const OPERATION_ID = '&operationId=';
/** A parameter value the general parse would take as it is: nothing to decode, no other parameter. */
const PLAIN_VALUE = /^[^%&=]*$/;

/** `$dps/registrations/PUT/iotdps-register/?$rid=…` and `…/GET/iotdps-get-operationstatus/?$rid=…&operationId=…`. */
export function parseRequestTopic(topic: string): DeviceRequestTopic {
  // The two requests every registration sends, as the SDKs write them (`$rid` first, operationId
  // second, nothing percent-encoded), are read by position; anything else takes the general parse,
  // which builds a map of the parameters and decodes each name and value (2 us for a poll's topic).
  if (topic.startsWith(REGISTER_RID)) {
    const rid = topic.slice(REGISTER_RID.length);
    if (rid.length > 0 && PLAIN_VALUE.test(rid)) return { kind: 'register', rid };
  } else if (topic.startsWith(OPERATION_STATUS_RID)) {
    const end = topic.indexOf(OPERATION_ID, OPERATION_STATUS_RID.length);
    if (end > OPERATION_STATUS_RID.length) {
      const rid = topic.slice(OPERATION_STATUS_RID.length, end);
      const operationId = topic.slice(end + OPERATION_ID.length);
      if (PLAIN_VALUE.test(rid) && PLAIN_VALUE.test(operationId)) {
        return { kind: 'operation-status', rid, operationId: operationId || null };
      }
    }
  }
  return parseRequestTopicGeneral(topic);
}

/** `parseRequestTopic` of any topic: every parameter decoded, the last of a name kept (exported for its test). */
export function parseRequestTopicGeneral(topic: string): DeviceRequestTopic {
  const q = topic.indexOf('?');
  const path = q === -1 ? topic : topic.slice(0, q);
  // The SDK pastes ids unencoded; a `+` in them must stay a `+`, so no form decoding of spaces.
  const params = new Map<string, string>();
  for (const pair of (q === -1 ? '' : topic.slice(q + 1)).split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    const value = eq === -1 ? '' : pair.slice(eq + 1);
    params.set(safeDecode(name), safeDecode(value));
  }
  const rid = params.get('$rid');
  if (!rid) return { kind: 'no-rid' };
  if (path === REGISTER_PATH) return { kind: 'register', rid };
  if (path === OPERATION_STATUS_PATH)
    return { kind: 'operation-status', rid, operationId: params.get('operationId') || null };
  return { kind: 'unknown', rid };
}

/**
 * Whether a device may publish on `topic`: the DPS request space, except the response topics that
 * every device subscribes to (a device publishing there would forge answers for all of them).
 */
export function isDeviceRequestTopic(topic: string): boolean {
  return topic.startsWith(REQUEST_PREFIX) && !topic.startsWith(RESPONSE_PREFIX);
}

/** `$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]`: lowercase `retry-after`, the only case the Node SDK reads. */
export function responseTopic(status: number, rid: string, retryAfterSeconds?: number): string {
  const retry = retryAfterSeconds === undefined ? '' : `&retry-after=${retryAfterSeconds}`;
  return `$dps/registrations/res/${status}/?$rid=${encodeURIComponent(rid)}${retry}`;
}

export interface MqttUsername {
  idScope: string;
  registrationId: string;
  apiVersion: string | undefined;
}

const MQTT_USERNAME = /^([^/]+)\/registrations\/([^/]+)\/(.*)$/;

/**
 * `{idScope}/registrations/{registrationId}/api-version=2019-03-31&ClientVersion=…`. Only the
 * api-version is read from the parameters (it gates `csr`); the SDKs' ClientVersion was never used.
 */
export function parseMqttUsername(username: string | undefined): MqttUsername | undefined {
  const match = MQTT_USERNAME.exec(username ?? '');
  if (!match) return undefined;
  const [, idScope = '', registrationId = '', rest = ''] = match;
  return { idScope, registrationId, apiVersion: firstParameter(rest, 'api-version') };
}

/**
 * `new URLSearchParams(query).get(name) ?? undefined`, without building the parameter list on
 * every DPS CONNECT (URLSearchParams' constructor and its decoding of each pair cost more than the
 * rest of the username's parse): the pairs are walked in order up to the first whose name is
 * `name`, a pair with nothing to decode (no `%`, no `+`) read as it is, any other decoded by
 * URLSearchParams itself. Exported for its test, which compares the two.
 */
export function firstParameter(query: string, name: string): string | undefined {
  // URLSearchParams drops one leading `?`.
  let at = query.charCodeAt(0) === 0x3f ? 1 : 0;
  while (at <= query.length) {
    let end = query.indexOf('&', at);
    if (end === -1) end = query.length;
    if (end > at) {
      const pair = query.slice(at, end);
      if (pair.includes('%') || pair.includes('+')) {
        // Behind an `&`, so that a `?` it starts with stays part of its name, as it is in the whole query.
        const decoded = new URLSearchParams(`&${pair}`).get(name);
        if (decoded !== null) return decoded;
      } else {
        const eq = pair.indexOf('=');
        if ((eq === -1 ? pair : pair.slice(0, eq)) === name) return eq === -1 ? '' : pair.slice(eq + 1);
      }
    }
    at = end + 1;
  }
  return undefined;
}

/**
 * JSON with every non-ASCII character escaped: the Node SDK decodes MQTT payloads as ASCII, which
 * would mangle a UTF-8 payload; the escaped form decodes to the same value in any client.
 */
export function asciiJson(value: unknown): string {
  return asciiJsonText(JSON.stringify(value));
}

/** `asciiJson` of a value already serialized (`JSON.stringify` output). */
export function asciiJsonText(json: string): string {
  return json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

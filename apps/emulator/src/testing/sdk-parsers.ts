/**
 * How the official device SDKs other than Node read a DPS answer, ported line by line so that tests
 * can run every answer the emulator sends through them. Sources (read with the search tool):
 *
 * - Python, Azure/azure-iot-sdk-python @ e75d1c2026eab939d5d31097fd0c22924c53abf8,
 *   azure-iot-device/azure/iot/device/provisioning/pipeline/:
 *   - mqtt_topic_provisioning.py:80-106 `extract_properties_from_dps_response_topic` (split on `$`,
 *     then `&` and `=`, `urllib.parse.unquote`, duplicate keys raise);
 *   - mqtt_topic_provisioning.py:109-121 `extract_status_code_from_dps_response_topic`;
 *   - pipeline_stages_provisioning_mqtt.py:133 `retry_after = key_values.get("retry-after", None)`,
 *     :142 `status_code=int(status_code, 10)`;
 *   - pipeline_stages_provisioning.py:97 and :233 `int(op.retry_after, 10)` (for ≥ 429 answers and
 *     for `assigning` polls), :45 `json.loads(response_body.decode("utf-8"))`, :59-60 timestamps
 *     kept as the JSON strings (`created_date_time`, `last_update_date_time`), never parsed.
 * - Embedded C, Azure/azure-sdk-for-c @ 19d99b758986eed912112786cc17ae6523bb24a5:
 *   - sdk/src/azure/iot/az_iot_provisioning_client.c:561-590
 *     `az_iot_provisioning_client_parse_received_topic_and_payload`: the topic must start with
 *     `$dps/registrations/res/`; the status up to the next `/` through `az_span_atou32`; then the
 *     text after the first `retry-after=` up to the next `&` through `az_span_atou32` (absent: 0);
 *   - :264-276 `errorCode` through `az_json_token_get_uint32`; :362 and :495 `lastUpdatedDateTimeUtc`
 *     and `timestampUtc` kept as the JSON string token (a span), never parsed;
 *   - sdk/src/azure/core/az_span.c:156 `az_span_atou32`: at least one character; the first a
 *     digit, or `+` followed by at least one more; every other character a digit; no overflow of
 *     uint32. Anything else is AZ_ERROR_UNEXPECTED_CHAR.
 * - C, Azure/azure-iot-sdk-c @ c86b2d6a510312ee77eb141ffe37cad8809a647d,
 *   provisioning_client/inc/azure_prov_client/prov_transport.h:56-73 `parse_retry_after_value`:
 *   `atol` when the first character is a digit, then anything below 1 or above 300 becomes 1.
 */

/** Python's `int(text, 10)`: surrounding whitespace, one sign, digits with single `_` between them. */
export function pythonInt10(text: string): number {
  const match = /^\s*([+-]?)(\d(?:_?\d)*)\s*$/.exec(text);
  if (!match) throw new Error(`ValueError: invalid literal for int() with base 10: '${text}'`);
  const value = Number((match[2] ?? '').replaceAll('_', ''));
  return match[1] === '-' ? -value : value;
}

/** Python's `urllib.parse.unquote` for the ASCII topics DPS sends. */
function pythonUnquote(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // unquote leaves malformed escapes as they are
  }
}

export interface PythonMqttResponse {
  statusCode: number;
  requestId: string;
  /** Seconds, or undefined when the topic has no retry-after (the SDK then uses 2 s). */
  retryAfter: number | undefined;
}

/** What the Python SDK's MQTT stage takes from a response topic (throws where Python raises). */
export function pythonParseResponseTopic(topic: string): PythonMqttResponse {
  if (!topic.includes('$dps/registrations/res/')) throw new Error('not a DPS response topic');
  const topicParts = topic.split('$');
  const properties = topicParts[2];
  if (properties === undefined) throw new Error('IndexError: list index out of range');
  const keyValues = new Map<string, string>();
  if (properties) {
    for (const entry of properties.split('&')) {
      const pair = entry.split('=');
      if (pair[1] === undefined) throw new Error('IndexError: list index out of range');
      const key = pythonUnquote(pair[0] ?? '');
      if (keyValues.get(key)) throw new Error('ValueError: Duplicate keys in DPS response topic');
      keyValues.set(key, pythonUnquote(pair[1]));
    }
  }
  const urlParts = (topicParts[1] ?? '').split('/');
  const statusCode = pythonInt10(pythonUnquote(urlParts[3] ?? ''));
  const requestId = keyValues.get('rid');
  if (requestId === undefined) throw new Error("KeyError: 'rid'");
  const retryAfter = keyValues.get('retry-after');
  return { statusCode, requestId, retryAfter: retryAfter === undefined ? undefined : pythonInt10(retryAfter) };
}

/** Embedded C's `az_span_atou32`: the number, or an error for anything but `+?digits` within uint32. */
export function cAzSpanAtou32(text: string): number {
  if (text.length < 1) throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
  let start = 0;
  if (!/[0-9]/.test(text[0] ?? '')) {
    if (text[0] !== '+' || text.length < 2) throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
    start = 1;
  }
  let value = 0;
  for (let i = start; i < text.length; i++) {
    const c = text[i] ?? '';
    if (!/[0-9]/.test(c)) throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
    const d = Number(c);
    if (Math.floor((0xffffffff - d) / 10) < value) throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
    value = value * 10 + d;
  }
  return value;
}

/** What Embedded C's `az_iot_provisioning_client_parse_received_topic_and_payload` takes from the topic. */
export function cParseResponseTopic(topic: string): { status: number; retryAfterSeconds: number } {
  const prefix = '$dps/registrations/res/';
  if (topic.indexOf(prefix) !== 0) throw new Error('AZ_ERROR_IOT_TOPIC_NO_MATCH');
  let remainder = topic.slice(prefix.length);
  const slash = remainder.indexOf('/');
  const statusText = slash === -1 ? remainder : remainder.slice(0, slash);
  remainder = slash === -1 ? '' : remainder.slice(slash + 1);
  const status = cAzSpanAtou32(statusText);
  const marker = 'retry-after=';
  const at = remainder.indexOf(marker);
  if (at === -1) return { status, retryAfterSeconds: 0 };
  const rest = remainder.slice(at + marker.length);
  const amp = rest.indexOf('&');
  return { status, retryAfterSeconds: cAzSpanAtou32(amp === -1 ? rest : rest.slice(0, amp)) };
}

/** azure-iot-sdk-c's `parse_retry_after_value` (MQTT topic value or HTTP header). */
export function cLegacyRetryAfter(text: string | undefined): number {
  const PROV_GET_THROTTLE_TIME = 1;
  const MAX_PROV_GET_THROTTLE_TIME = 5 * 60;
  if (text === undefined || !/^[0-9]/.test(text)) return PROV_GET_THROTTLE_TIME;
  const result = Number.parseInt(text, 10); // atol: leading digits
  return result < PROV_GET_THROTTLE_TIME || result > MAX_PROV_GET_THROTTLE_TIME ? PROV_GET_THROTTLE_TIME : result;
}

/** Node: `Number(x) * 1000` when the value is a non-empty string, else the polling interval. */
export function nodeRetryAfterMs(text: string | undefined, pollingIntervalMs = 2000): number {
  return text ? Number(text) * 1000 : pollingIntervalMs;
}

/**
 * The fields the Embedded C SDK reads from a payload, with its type rules: a JSON object; for a
 * 2xx answer `operationId` and `status` strings (`status` one of five words); `assignedHub` and
 * `deviceId` both strings or both absent; `errorCode` a uint32; `timestampUtc` and
 * `lastUpdatedDateTimeUtc` strings kept as they are.
 */
export function cReadPayload(text: string): {
  operationStatus?: string;
  errorCode?: number;
  timestamps: string[];
} {
  const body = JSON.parse(text) as Record<string, unknown>;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
  const timestamps: string[] = [];
  const uint32 = (value: unknown) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
    }
    return value;
  };
  const string = (value: unknown) => {
    if (typeof value !== 'string') throw new Error('AZ_ERROR_ITEM_NOT_FOUND');
    return value;
  };
  const result: { operationStatus?: string; errorCode?: number; timestamps: string[] } = { timestamps };
  if ('operationId' in body) string(body.operationId);
  if ('status' in body) {
    const status = string(body.status);
    if (!['assigning', 'assigned', 'failed', 'unassigned', 'disabled'].includes(status)) {
      throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
    }
    result.operationStatus = status;
  }
  if ('errorCode' in body) result.errorCode = uint32(body.errorCode);
  if ('timestampUtc' in body) timestamps.push(string(body.timestampUtc));
  if ('trackingId' in body) string(body.trackingId);
  if ('message' in body) string(body.message);
  const state = body.registrationState as Record<string, unknown> | undefined;
  if (state !== undefined) {
    if (state === null || typeof state !== 'object') throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
    if ('assignedHub' in state !== 'deviceId' in state) throw new Error('AZ_ERROR_ITEM_NOT_FOUND');
    if ('assignedHub' in state) string(state.assignedHub);
    if ('deviceId' in state) string(state.deviceId);
    if ('errorMessage' in state) string(state.errorMessage);
    if ('errorCode' in state) uint32(state.errorCode);
    if ('lastUpdatedDateTimeUtc' in state) timestamps.push(string(state.lastUpdatedDateTimeUtc));
    if ('payload' in state && state.payload !== null && typeof state.payload !== 'object') {
      throw new Error('AZ_ERROR_UNEXPECTED_CHAR');
    }
  }
  return result;
}

import type { HelpTopic } from './args.js';

const CONNECTION = `Connection (flag, or environment variable; a flag wins):
  --id-scope <scope>             ID scope of the DPS instance, e.g. 0ne00000A0A       DPS_ID_SCOPE
                                 (Azure portal: DPS overview; local emulator: printed when it starts)
  --provisioning-host <host[:port]>
                                 DPS device endpoint                                  DPS_PROVISIONING_HOST
                                 default global.azure-devices-provisioning.net (real Azure);
                                 local emulator: localhost:8883 (MQTT), localhost:5671 (AMQP)
                                 or its HTTPS port (HTTP and WebSockets)
  --transport <name>             mqtt (default), mqtt-ws, amqp, amqp-ws or http       DPS_TRANSPORT
                                 (-ws: over WebSockets at wss://host/$iothub/websocket;
                                 the SDK says port 443, device-sim connects to the port given)
  --ca <file>                    PEM CA certificate to trust, e.g. the local          DPS_CA_FILE
                                 emulator's .dpskit/emulator/tls/ca.pem (real Azure: not needed)
  --payload <json>               custom payload sent to the allocation webhook,       DPS_PAYLOAD
                                 a JSON object: '{"MyDeviceFirmwareVersion":"12.0.2.5"}'
  --polling-interval <ms>        wait between status polls when the service sends     DPS_POLLING_INTERVAL
                                 no retry-after (SDK default 2000)
  --timeout <seconds>            give up without a final answer after this long,      DPS_TIMEOUT
                                 per device, default 120, 0 = wait forever. DPS retries a
                                 webhook answering 429/5xx for 415 s before it fails the
                                 device: use 0 or > 450 to see that answer
  --retries <n>                  register again after a transient failure (connection   DPS_RETRIES
                                 refused or dropped, SDK request timeout, 429/5xx),
                                 n times at most, with exponential back-off from 1 s
                                 and jitter, within --timeout; default 0

After provisioning (azure-iot-device):
  --connect                      connect to the assigned hub, print the twin found (desired and
                                 reported: devices do not see tags) and report a property
  --telemetry <n>                also send n telemetry messages (implies --connect)
  --hub-transport <name>         mqtt (default), mqtt-ws, amqp, amqp-ws or http to the hub     DPS_HUB_TRANSPORT
                                 (implies --connect; http has no twin, methods or desired
                                 pushes: telemetry and cloud-to-device messages only)
  --hub-host <host[:port]>       where the hub is reached (the connection string's           DPS_HUB_HOST
                                 GatewayHostName). Default: the assigned hub itself against
                                 real Azure; the emulator otherwise: the --provisioning-host
                                 when DPS and the hub share a listener, else its host on
                                 8883 (mqtt), 5671 (amqp) or 8443 (mqtt-ws, amqp-ws, http)`;

const STAY = `Staying on the hub (for testing service-side code; implies --connect):
  --stay                         after connecting, stay until Ctrl-C or SIGTERM (then leave, exit 0):
                                 answer direct methods, print desired property changes and
                                 cloud-to-device messages (each completed), one line per event
  --method <name=status[:json]>  how to answer method <name>, e.g. 'reboot=200:{"ok":true}',
                                 'getLog=404', 'quiet=none' (no answer: the caller gets 504101);
                                 '*=...' answers every other method. Repeatable. Default for a
                                 method not named: 200 with {"methodName","payload"} (the request echoed)
  --ack-desired                  acknowledge each desired change as IoT Plug and Play does: report
                                 {"<name>":{"value","ac":200,"av":<$version>,"ad":"completed"}}
  --interval <seconds>           send a telemetry message every interval while staying`;

export const HELP: Record<HelpTopic, string> = {
  main: `device-sim: simulated Azure IoT devices that provision through DPS with the official Node SDK
(azure-iot-provisioning-device, symmetric keys), against real Azure or the local dpskit emulator.

Usage:
  device-sim register [options]        provision one device and print what it gets (the tutorial's device output)
  device-sim fleet [options]           provision many devices at once and print a summary (rate, latency, outcomes)
  device-sim keys derive [ids...]      derive device keys from an enrollment group key (the tutorial's openssl step)
  device-sim certs create [ids...]     X.509: a root CA, an intermediate and device certificates (PEM), with thumbprints
  device-sim help <command>            options of a command (also: device-sim <command> --help)
  device-sim --version

Example (local emulator):
  device-sim register --provisioning-host localhost:8883 --ca .dpskit/emulator/tls/ca.pem \\
    --id-scope 0ne00000A0A --registration-id contoso-toaster-007 --group-key <enrollment group key>

Secrets can stay off the command line: every option has an environment variable (DPS_GROUP_KEY, ...).
Exit codes: 0 success, 1 the device(s) did not get assigned or the run failed, 2 usage error, 130 interrupted.
`,
  register: `device-sim register: provision one device through DPS and print the outcome.

Usage:
  device-sim register --id-scope <scope> --registration-id <id> (--group-key <key> | --device-key <key>) [options]

Device:
  --registration-id <id>         the device's registration id, e.g. contoso-toaster-007   DPS_REGISTRATION_ID
  --group-key <key>              the enrollment group's primary key; the device key is     DPS_GROUP_KEY
                                 derived from it (HMAC-SHA256 of the registration id)
  --device-key <key>             the device's own key (individual enrollment, or derived   DPS_DEVICE_KEY
                                 already, see: device-sim keys derive). Give exactly one key.
  --cert <file> --key <file>     X.509 instead of a key: the device certificate (PEM, followed by
                                 the intermediates it presents) and its private key; the
                                 registration id must be the certificate's CN (device-sim certs create)

${CONNECTION}

${STAY}

Output:
  --json                         print the outcome as one JSON object instead of the tutorial's text
                                 (with --stay: then one JSON object a line per event, and
                                 {"event":"left",...} at the end)
  -h, --help                     this help

The text output follows the tutorial's device sample: "Provisioning API Version", "Registering Device",
"Provisioning Status: PROV_DEVICE_REG_STATUS_..." lines, then "Registration Information received from
service: <hub>, deviceId: <id>" or "Provisioning Failure: ... Msg: <service message>" with its error code.

Exit codes: 0 assigned (with --stay: and left the hub on Ctrl-C/SIGTERM); 1 not assigned (failed,
disabled, unauthorized, connection error, timeout) or a failure on the hub; 2 usage error (nothing
was sent); 130 interrupted (Ctrl-C) before the device was assigned.

Examples:
  # the tutorial's toaster, against the local emulator
  device-sim register --provisioning-host localhost:8883 --ca .dpskit/emulator/tls/ca.pem \\
    --id-scope 0ne00000A0A --registration-id contoso-toaster-007 --group-key "$DPS_GROUP_KEY" \\
    --payload '{"MyDeviceFirmwareVersion":"12.0.2.5","MyDeviceProvisioningVersion":"1.0.0.0"}'

  # a toaster that stays on its hub for your backend's tests (Ctrl-C to leave)
  device-sim register --provisioning-host localhost:8883 --ca .dpskit/emulator/tls/ca.pem \
    --id-scope 0ne00000A0A --registration-id contoso-toaster-007 --group-key "$DPS_GROUP_KEY" \
    --stay --method 'reboot=200:{"rebooting":true}' --ack-desired --interval 10

  # real Azure, key from: az iot dps enrollment-group show --dps-name <dps> --enrollment-id <group> --show-keys
  export DPS_ID_SCOPE=0ne00XXXXXX DPS_GROUP_KEY=<primaryKey>
  device-sim register --registration-id contoso-heatpump-088 --transport http
`,
  fleet: `device-sim fleet: provision many devices, each a real SDK client with its own connection, and
print a summary: outcomes by status and error code, devices per hub, registrations per second and
latency percentiles (p50, p95, p99, max).

Usage:
  device-sim fleet --count <n> --registration-id-template <template> --id-scope <scope> --group-key <key> [options]

Devices:
  --count <n>                    how many devices to register (required)
  --registration-id-template <t> registration id of each device: {n} is the device      DPS_REGISTRATION_ID_TEMPLATE
                                 number, {n:4} zero-pads it to 4 digits, e.g. contoso-toaster-{n:3}.
                                 Several templates (repeat the flag, or separate with commas) take
                                 turns: toaster-1, heatpump-1, toaster-2, heatpump-2, ...
  --start <n>                    number of the first device of each template, default 1
  --payload <json>               repeated: payloads that take turns over the devices as the
                                 templates do (device i sends payload i mod k; as many payloads as
                                 templates gives each template's devices their own)
  --payload-file <file>          JSON lines, one payload object a line (blank lines skipped), taking
                                 turns the same way: as many lines as devices gives each its own
  --concurrency <n>              devices registering at the same time, default 50
  --workers <n>                  worker threads the devices are spread over (each its share of the
                                 concurrency and one TLS context), default: the number of cores
                                 minus one (one is left to a local emulator), at least 1
  --group-key <key>              the enrollment group key; device keys are derived      DPS_GROUP_KEY
  --cert <template> --key <template>
                                 X.509 instead of a group key: each device's files, {id} standing
                                 for its registration id, e.g. --cert 'certs/{id}.pem' --key 'certs/{id}.key.pem'

${CONNECTION}

${STAY}
                                 fleet: every device stays (at most 1000; all at once, one thread)

Output:
  --json                         print the summary as one JSON object (with --stay: one JSON
                                 object a line per event before it, each with its deviceId)
  --no-progress                  no progress: no bar on a terminal, no line every 15 s in a log
  -h, --help                     this help

Ctrl-C stops launching devices, cancels the ones in flight and still prints the summary,
with a "stopped early" line; a second Ctrl-C exits at once.

Exit codes: 0 every device got the service's final answer (assigned, failed or disabled; with
--stay: every device was on its hub when Ctrl-C/SIGTERM came); 1 some device got none
(unauthorized, connection error, timeout) or failed on its hub; 2 usage error; 130 interrupted.

Example (half toasters, half heat pumps, against the local emulator):
  device-sim fleet --count 1000 --concurrency 100 \\
    --registration-id-template 'contoso-toaster-{n:4},contoso-heatpump-{n:4}' \\
    --provisioning-host localhost:8883 --ca .dpskit/emulator/tls/ca.pem --id-scope 0ne00000A0A --group-key "$DPS_GROUP_KEY"
`,
  keys: `device-sim keys: device key tools.

Usage:
  device-sim keys derive --group-key <key> [registrationId...]   see: device-sim keys derive --help
`,
  certs: `device-sim certs: X.509 certificates for DPS's X.509 attestation (made with @peculiar/x509, ECDSA P-256).

Usage:
  device-sim certs create --out <folder> [<registrationId>...] [options]
  device-sim certs create --out <folder> --count <n> --registration-id-template <t> [options]
  device-sim certs thumbprint <file.pem>...

create writes into <folder> (created if needed; an existing root and intermediate there are reused,
so devices can be added later):
  root.pem, root.key.pem                   a self-signed root CA ("dpskit test root CA")
  intermediate.pem, intermediate.key.pem   an intermediate CA signed by the root ("dpskit test intermediate CA")
  <id>.pem, <id>.key.pem                   per device: subject CN=<id> (DPS takes the registration id from
                                           it), signed by the intermediate; <id>.pem holds the device
                                           certificate followed by the intermediate (what the device presents)
and prints each file's subject and SHA-1/SHA-256 thumbprints.

Options:
  --out <folder>                 where the PEM files go (required)
  --count <n>, --registration-id-template <t>, --start <n>
                                 device ids as for fleet ({n}, {n:4}), instead of listing them
  --ou <unit>                    OU=<unit> in each device certificate, e.g. toasters (a property a
                                 custom allocation policy can decide by)
  --no-intermediate              sign device certificates with the root directly
  --days <n>                     validity of new certificates, default 365
  --json                         one JSON object a line per file
  -h, --help                     this help

Enrollments: an enrollment group with signingCertificates.primary = intermediate.pem (or root.pem
for the root's devices), or individual enrollments with clientCertificates.primary = <id>.pem.

Example (emulator config, then a fleet of X.509 devices):
  device-sim certs create --out certs --count 10 --registration-id-template 'contoso-toaster-{n}' --ou toasters
  device-sim fleet --count 10 --registration-id-template 'contoso-toaster-{n}' --cert 'certs/{id}.pem' \
    --key 'certs/{id}.key.pem' --provisioning-host localhost:8883 --ca .dpskit/emulator/tls/ca.pem --id-scope 0ne00000A0A
`,
  'keys derive': `device-sim keys derive: derive each device's symmetric key from the enrollment group key, as
the tutorial does with openssl/PowerShell: base64(HMAC-SHA256(base64-decoded group key, registration id)).

Usage:
  device-sim keys derive --group-key <key> <registrationId> [<registrationId>...]
  device-sim keys derive --group-key <key> < ids.txt           (ids on stdin, one a line)

Options:
  --group-key <key>              the enrollment group's key                          DPS_GROUP_KEY
  --json                         one JSON object a line: {"registrationId":...,"derivedKey":...}
  -h, --help                     this help

Output: one "<registrationId> <derivedKey>" line per id, in input order. Blank input lines are
skipped; invalid registration ids are reported on stderr with their line number and skipped
(exit code 1 at the end). Streams, so a million ids are fine.

Example:
  device-sim keys derive --group-key "$DPS_GROUP_KEY" contoso-toaster-007 contoso-heatpump-088
`,
};

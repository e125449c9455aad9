import { type EnrollmentGroup, maskWebhookUrl, type X509Attestation } from '@dpskit/contracts';
import type { Emulator } from '../emulator.js';
import { consumerGroupsOf } from '../hub/core/eventhub.js';

/** The startup summary: endpoints, ID scope, the CA to trust, hubs and enrollments with their keys. */
export function formatBanner(emulator: Emulator): string {
  const hubs = emulator.linkedHubs;
  const lines: string[] = [];
  const { mqtt, https, amqp, webSockets } = emulator.endpoints;
  lines.push(`DPS emulator running — ID scope ${emulator.idScope}`);
  lines.push(`  MQTT   mqtts://${hostPort(mqtt.host, mqtt.port)}   provisioningHost "${mqtt.provisioningHost}"`);
  lines.push(
    amqp
      ? `  AMQP   amqps://${hostPort(amqp.host, amqp.port)}   provisioningHost "${amqp.provisioningHost}"${amqp.port === 5671 ? '' : '  (the C SDK always dials 5671)'}`
      : '  AMQP   off',
  );
  if (https) {
    const note =
      https.port === 443
        ? ''
        : `  (Node SDKs' HTTPS clients dial 443: point them here with @dpskit/emulator/sdk, or an https.Agent with defaultPort ${https.port})`;
    lines.push(
      `  HTTPS  https://${hostPort(https.host, https.port)}   provisioningHost "${https.provisioningHost}"${note}`,
    );
  } else {
    lines.push('  HTTPS  off');
  }
  if (webSockets) {
    const note =
      webSockets.port === 443
        ? ''
        : `  (Node MqttWs/AmqpWs always dial 443: point them here with @dpskit/emulator/sdk, or a webSocketAgent for port ${webSockets.port})`;
    lines.push(
      `  WS     wss://${hostPort(https?.host ?? webSockets.host, webSockets.port)}/$iothub/websocket   subprotocols ${webSockets.subprotocols.join(', ')}   provisioningHost "${webSockets.provisioningHost}"${note}`,
    );
  }
  if (emulator.serviceConnectionString) lines.push(`  Service API  ${emulator.serviceConnectionString}`);
  if (emulator.webViewUrl)
    lines.push(`  Web    ${emulator.webViewUrl}   (read-only: enrollments, live registrations, fleet charts, hubs)`);
  lines.push(`  State  ${emulator.stateDir}`);
  lines.push(`  CA     ${emulator.caCertPath}${emulator.tls.action === 'reused' ? '' : ` (${emulator.tls.action})`}`);
  lines.push(`         trust it with: export NODE_EXTRA_CA_CERTS="${emulator.caCertPath}"`);
  lines.push(...sdkTrustLines(emulator));
  lines.push('');
  lines.push('Linked IoT hubs (emulated here: assigned devices connect, the registry is on the HTTPS port):');
  for (const hub of hubs) {
    const notes = [`weight ${hub.allocationWeight}`, ...(hub.applyAllocationPolicy ? [] : ['not in allocation'])];
    lines.push(`  ${hub.hostName} (${notes.join(', ')})`);
    if (https) lines.push(`      registry  ${emulator.hubConnectionString(hub.hostName)}`);
    if (amqp) {
      lines.push(`      events    ${emulator.eventHubConnectionString(hub.hostName)}  (@azure/event-hubs)`);
      if (hub.consumerGroups?.length)
        lines.push(`      consumer groups  ${consumerGroupsOf(hub.consumerGroups).join(', ')}`);
    }
  }
  lines.push(
    `  Devices: HostName={assignedHub};DeviceId={deviceId};SharedAccessKey={device key};GatewayHostName=${mqtt.provisioningHost} (Node MQTT)`,
  );

  const generated = new Map(emulator.generatedKeys.map((g) => [`${g.kind}:${g.id}`, new Set(g.keys)]));
  const keyLines = (kind: 'group' | 'individual', id: string, attestation: EnrollmentGroup['attestation']) => {
    if (attestation.type === 'x509') return x509Lines(attestation.x509);
    const keys = attestation.symmetricKey;
    const made = generated.get(`${kind}:${id}`);
    return (['primaryKey', 'secondaryKey'] as const).map(
      (which) => `      ${which.padEnd(12)} ${keys?.[which] ?? ''}${made?.has(which) ? '  (generated)' : ''}`,
    );
  };
  const describe = (e: {
    allocationPolicy?: string;
    iotHubs?: string[];
    provisioningStatus?: string;
    customAllocationDefinition?: { webhookUrl: string };
  }) =>
    [
      e.allocationPolicy ?? 'default policy',
      e.customAllocationDefinition ? `webhook ${maskWebhookUrl(e.customAllocationDefinition.webhookUrl)}` : undefined,
      e.iotHubs?.length ? `hubs ${e.iotHubs.join(', ')}` : 'all linked hubs',
      e.provisioningStatus === 'disabled' ? 'DISABLED' : undefined,
    ]
      .filter(Boolean)
      .join('; ');

  const { groups, individuals } = emulator.enrollments;
  lines.push('');
  lines.push(
    groups.length
      ? 'Enrollment groups (device key = HMAC-SHA256(group key, registration id)):'
      : 'Enrollment groups: none',
  );
  for (const group of groups) {
    lines.push(`  ${group.enrollmentGroupId}  [${describe(group)}]`);
    lines.push(...keyLines('group', group.enrollmentGroupId, group.attestation));
  }
  lines.push(individuals.length ? 'Individual enrollments:' : 'Individual enrollments: none');
  for (const individual of individuals) {
    lines.push(`  ${individual.registrationId}  [${describe(individual)}]`);
    lines.push(...keyLines('individual', individual.registrationId, individual.attestation));
  }
  lines.push('');
  lines.push('Press Ctrl+C to stop.');
  return `${lines.join('\n')}\n`;
}

/** X.509 enrollments: which certificates they trust, by subject and SHA-256 thumbprint. */
function x509Lines(x509: X509Attestation | undefined): string[] {
  const lines: string[] = [];
  for (const set of ['clientCertificates', 'signingCertificates'] as const) {
    for (const slot of ['primary', 'secondary'] as const) {
      const info = x509?.[set]?.[slot]?.info;
      if (info)
        lines.push(`      ${`${set} ${slot}`.padEnd(28)} ${info.subjectName}  SHA-256 ${info.sha256Thumbprint}`);
    }
  }
  for (const slot of ['primary', 'secondary'] as const) {
    const name = x509?.caReferences?.[slot];
    if (name) lines.push(`      ${`caReferences ${slot}`.padEnd(28)} ${name}`);
  }
  return lines;
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * How the Python and C device SDKs trust the CA and reach this emulator. Both always connect to
 * 8883 (MQTT) and 443 (HTTPS, WebSockets) and take a host name without a port.
 */
function sdkTrustLines(emulator: Emulator): string[] {
  const { mqtt, https } = emulator.endpoints;
  const host = mqtt.provisioningHost.replace(/:\d+$/, '');
  const fixed = [mqtt.port === 8883 ? '' : ` MQTT is on ${mqtt.port}, not 8883 (start with --mqtt-port 8883)`];
  if (https && https.port !== 443) fixed.push(` HTTPS is on ${https.port}, not 443`);
  const note = fixed.filter(Boolean).join(';');
  return [
    `         Python SDK: server_verification_cert=<text of ca.pem>, provisioning_host "${host}"`,
    `         C SDK: OPTION_TRUSTED_CERT <text of ca.pem> or the system CA store, global_prov_uri "${host}"`,
    `         (Python and C always use ports 8883 and 443${note ? `:${note}` : ''})`,
  ];
}

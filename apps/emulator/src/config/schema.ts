import {
  attestationMechanismSchema,
  decodeBase64Key,
  enrollmentGroupSchema,
  individualEnrollmentSchema,
  KeyError,
  registrationIdProblem,
} from '@dpskit/contracts';
import { z } from 'zod';
import { MAX_ATTEMPT_HISTORY } from '../core/attempts.js';
import {
  type CertificateUse,
  certificateUses,
  findCertificateConflict,
} from '../core/enrollments/certificate-conflicts.js';
import { checkAttestation, initialTwinProblem } from '../core/enrollments/validate.js';
import { describeCertificate } from '../core/enrollments/x509.js';
import { SERVICE_RIGHTS } from '../core/service-auth.js';
import { consumerGroupNameProblem, MAX_CONSUMER_GROUPS } from '../hub/core/eventhub.js';

const hostNameSchema = z
  .string()
  .min(1)
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/,
    'must be a DNS host name',
  );

export const linkedHubConfigSchema = z.strictObject({
  hostName: hostNameSchema,
  allocationWeight: z.number().int().min(1).max(1000).default(1),
  applyAllocationPolicy: z.boolean().default(true),
  /** dpskit: the emulated latency `geoLatency` compares. */
  latencyMs: z.number().nonnegative().optional(),
  /**
   * The consumer groups of the hub's built-in endpoint besides `$Default` (Azure: created with
   * `az iot hub consumer-group create`, the portal or ARM). Names case-insensitive.
   */
  consumerGroups: z
    .array(
      z.string().superRefine((name, ctx) => {
        const problem = consumerGroupNameProblem(name);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    )
    .max(MAX_CONSUMER_GROUPS - 1, `at most ${MAX_CONSUMER_GROUPS - 1} besides $Default (Event Hubs: 20 a hub)`)
    .optional(),
});

// The enrollment schemas are the service's own (contracts); only `attestation` may be left out of
// the file, in which case a symmetric key pair is generated.
const enrollmentGroupConfigSchema = enrollmentGroupSchema.extend({
  attestation: attestationMechanismSchema.optional(),
});
const individualEnrollmentConfigSchema = individualEnrollmentSchema.extend({
  attestation: attestationMechanismSchema.optional(),
});

export const emulatorConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    idScope: z
      .string()
      .regex(/^[A-Za-z0-9]{1,64}$/, 'must be letters and digits, like 0ne00000A0A')
      .default('0ne00000A0A'),
    /** The instance's default policy for enrollments that name none (DPS: hashed; custom is not allowed). */
    defaultAllocationPolicy: z
      .enum(['hashed', 'geoLatency', 'static'], {
        message: 'must be hashed, geoLatency or static (DPS does not allow custom here)',
      })
      .default('hashed'),
    iotHubs: z.array(linkedHubConfigSchema).min(1, 'link at least one IoT hub'),
    /**
     * The service API's shared access policies. Default: `provisioningserviceowner` with the
     * emulator's well-known development key (see the README).
     */
    sharedAccessPolicies: z
      .array(
        z.strictObject({
          keyName: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . or -'),
          primaryKey: z.string().min(1),
          secondaryKey: z.string().min(1).optional(),
          rights: z
            .array(z.enum(SERVICE_RIGHTS))
            .min(1)
            .default([...SERVICE_RIGHTS]),
        }),
      )
      .min(1, 'give at least one policy, or leave sharedAccessPolicies out for the default')
      .optional(),
    /**
     * The instance's CA certificates (DPS: uploaded and verified through the management plane), by
     * name: what `attestation.x509.caReferences` of enrollments name. PEM or base64 DER.
     */
    certificates: z
      .array(
        z.strictObject({
          name: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1 to 128 letters, digits, _ . or -'),
          certificate: z.string().min(1),
        }),
      )
      .default([]),
    /**
     * dpskit: registration attempts the store keeps for the web view (default 10,000, the oldest go
     * first; 0 keeps none). `--attempt-history` and the `attemptHistory` option override it.
     */
    attemptHistory: z
      .number()
      .refine((n) => Number.isInteger(n) && n >= 0 && n <= MAX_ATTEMPT_HISTORY, {
        message: `must be a whole number of attempts from 0 to ${MAX_ATTEMPT_HISTORY} (0 keeps none)`,
      })
      .optional(),
    /**
     * dpskit: certificate issuance (register bodies with `csr`): the issuing CA certificate (PEM; its
     * issuers up to the root may follow), its private key (PEM) and the issued certificates'
     * validity in days (default 30). `--issuing-ca`/`--issuing-ca-key` and the `issuingCa` option
     * override it.
     */
    issuingCa: z
      .strictObject({
        certificate: z.string().min(1),
        key: z.string().min(1),
        days: z
          .number()
          .refine((n) => Number.isInteger(n) && n >= 1 && n <= 3650, {
            message: 'must be a whole number of days from 1 to 3650',
          })
          .optional(),
      })
      .optional(),
    enrollmentGroups: z.array(enrollmentGroupConfigSchema).default([]),
    individualEnrollments: z.array(individualEnrollmentConfigSchema).default([]),
  })
  .superRefine((config, ctx) => {
    const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const certificateNames = new Set<string>();
    config.certificates.forEach((entry, i) => {
      const name = entry.name.toLowerCase();
      if (certificateNames.has(name)) issue(['certificates', i, 'name'], `"${entry.name}" is used twice`);
      certificateNames.add(name);
      const described = describeCertificate(entry.certificate);
      if (!described.ok) issue(['certificates', i, 'certificate'], `it ${described.problem}`);
    });
    const linked = new Set<string>();
    config.iotHubs.forEach((hub, i) => {
      const name = hub.hostName.toLowerCase();
      if (linked.has(name)) issue(['iotHubs', i, 'hostName'], `"${hub.hostName}" is linked twice`);
      linked.add(name);
      const groups = new Set<string>();
      hub.consumerGroups?.forEach((group, j) => {
        if (groups.has(group.toLowerCase())) issue(['iotHubs', i, 'consumerGroups', j], `"${group}" is listed twice`);
        groups.add(group.toLowerCase());
      });
    });
    // Each hub's Event Hubs-compatible endpoint is named by its host name's first label (as IoT Hub
    // names a hub's built-in endpoint by the hub's name; hub/core/eventhub.ts eventHubName): two
    // hubs of one name would share one endpoint, the second's reading the first's telemetry.
    const named = new Map<string, string>();
    config.iotHubs.forEach((hub, i) => {
      const name = hub.hostName.toLowerCase();
      const entity = name.split('.')[0] ?? name;
      const other = named.get(entity);
      if (other === undefined) named.set(entity, hub.hostName);
      else if (other.toLowerCase() !== name)
        issue(
          ['iotHubs', i, 'hostName'],
          `"${hub.hostName}" has the name "${entity}" of "${other}" (its first label): each linked hub needs its own, which names its Event Hubs-compatible endpoint`,
        );
    });

    const checkEnrollment = (
      list: 'enrollmentGroups' | 'individualEnrollments',
      index: number,
      enrollment: z.output<typeof enrollmentGroupConfigSchema> | z.output<typeof individualEnrollmentConfigSchema>,
    ) => {
      const at = (...rest: PropertyKey[]) => [list, index, ...rest];
      const attestation = enrollment.attestation;
      if (attestation && attestation.type !== 'symmetricKey' && attestation.type !== 'x509') {
        issue(
          at('attestation', 'type'),
          `"${attestation.type}" attestation is not emulated; use "symmetricKey" or "x509"`,
        );
      }
      if (attestation?.type === 'x509') {
        const checked = checkAttestation(list === 'enrollmentGroups' ? 'group' : 'individual', attestation);
        if (typeof checked === 'string') issue(at('attestation'), checked);
        const references = attestation.x509?.caReferences;
        for (const slot of ['primary', 'secondary'] as const) {
          const name = references?.[slot];
          if (name && !certificateNames.has(name.toLowerCase())) {
            issue(
              at('attestation', 'x509', 'caReferences', slot),
              `"${name}" is not one of the certificates (give it in the top-level certificates list)`,
            );
          }
        }
      }
      for (const which of ['primaryKey', 'secondaryKey'] as const) {
        const key = attestation?.symmetricKey?.[which];
        if (key === undefined) continue;
        try {
          const bytes = decodeBase64Key(key, which).length;
          if (bytes < 16 || bytes > 64)
            issue(at('attestation', 'symmetricKey', which), `must be 16 to 64 bytes, not ${bytes}`);
        } catch (err) {
          issue(at('attestation', 'symmetricKey', which), err instanceof KeyError ? err.message : String(err));
        }
      }
      if (enrollment.allocationPolicy === 'custom' && !enrollment.customAllocationDefinition) {
        issue(at('customAllocationDefinition'), 'is required when allocationPolicy is "custom"');
      }
      const webhookUrl = enrollment.customAllocationDefinition?.webhookUrl;
      if (webhookUrl !== undefined) {
        let protocol: string | undefined;
        try {
          protocol = new URL(webhookUrl).protocol;
        } catch {
          issue(at('customAllocationDefinition', 'webhookUrl'), `"${webhookUrl}" is not a URL`);
        }
        if (protocol && protocol !== 'http:' && protocol !== 'https:') {
          issue(at('customAllocationDefinition', 'webhookUrl'), `must be an http or https URL, not ${protocol}`);
        }
      }
      enrollment.iotHubs?.forEach((hub, i) => {
        if (!linked.has(hub.toLowerCase())) issue(at('iotHubs', i), `"${hub}" is not one of the linked iotHubs`);
      });
      if (enrollment.iotHubHostName && !linked.has(enrollment.iotHubHostName.toLowerCase())) {
        issue(at('iotHubHostName'), `"${enrollment.iotHubHostName}" is not one of the linked iotHubs`);
      }
      // As through the service API: a twin the hub would refuse failed every registration (500001).
      const twinProblem = initialTwinProblem(enrollment.initialTwin);
      if (twinProblem) {
        const [field = '', cause = twinProblem] = twinProblem.split(/: (.*)/s);
        issue(at(...field.split('.')), cause);
      }
    };

    config.sharedAccessPolicies?.forEach((policy, i) => {
      for (const which of ['primaryKey', 'secondaryKey'] as const) {
        const key = policy[which];
        if (key === undefined) continue;
        try {
          const bytes = decodeBase64Key(key, which).length;
          if (bytes < 16 || bytes > 64)
            issue(['sharedAccessPolicies', i, which], `must be 16 to 64 bytes, not ${bytes}`);
        } catch (err) {
          issue(['sharedAccessPolicies', i, which], err instanceof KeyError ? err.message : String(err));
        }
      }
    });

    const groupIds = new Set<string>();
    config.enrollmentGroups.forEach((group, i) => {
      const id = group.enrollmentGroupId.toLowerCase();
      if (groupIds.has(id))
        issue(['enrollmentGroups', i, 'enrollmentGroupId'], `"${group.enrollmentGroupId}" is used twice`);
      groupIds.add(id);
      checkEnrollment('enrollmentGroups', i, group);
    });
    const registrationIds = new Set<string>();
    config.individualEnrollments.forEach((enrollment, i) => {
      const problem = registrationIdProblem(enrollment.registrationId);
      if (problem) issue(['individualEnrollments', i, 'registrationId'], problem);
      const id = enrollment.registrationId.toLowerCase();
      if (registrationIds.has(id)) {
        issue(['individualEnrollments', i, 'registrationId'], `"${enrollment.registrationId}" is used twice`);
      }
      registrationIds.add(id);
      checkEnrollment('individualEnrollments', i, enrollment);
    });

    // One certificate, one enrollment (as through the service API): the first to name it keeps it.
    const caCertificates = new Map(config.certificates.map((entry) => [entry.name.toLowerCase(), entry.certificate]));
    const lists = [
      ['enrollmentGroups', 'group', config.enrollmentGroups.map((g) => [g.enrollmentGroupId, g.attestation] as const)],
      [
        'individualEnrollments',
        'individual',
        config.individualEnrollments.map((e) => [e.registrationId, e.attestation] as const),
      ],
    ] as const;
    for (const [list, kind, entries] of lists) {
      const seen: { use: CertificateUse; index: number }[] = [];
      entries.forEach(([id, attestation], index) => {
        if (attestation?.type !== 'x509') return;
        const uses = certificateUses(kind, id, attestation as never, caCertificates);
        const conflict = findCertificateConflict(
          uses,
          seen.map((s) => s.use),
        );
        if (conflict) {
          const owner = seen.find((s) => s.use === conflict.other);
          issue(
            [list, index, 'attestation', 'x509', ...conflict.use.field.split('.')],
            `the certificate (SHA-256 ${conflict.use.sha256Thumbprint}) is already the ${conflict.other.field} of ${list}[${owner?.index}] ("${conflict.other.id}"); a certificate may identify the devices of one ${kind === 'group' ? 'enrollment group' : 'individual enrollment'} only`,
          );
        }
        for (const use of uses) seen.push({ use, index });
      });
    }
  });

/** The config file's shape as written (defaults not yet applied). */
export type EmulatorConfigInput = z.input<typeof emulatorConfigSchema>;
/** The validated config with defaults applied. */
export type EmulatorConfig = z.output<typeof emulatorConfigSchema>;
export type EnrollmentGroupConfig = EmulatorConfig['enrollmentGroups'][number];
export type IndividualEnrollmentConfig = EmulatorConfig['individualEnrollments'][number];
